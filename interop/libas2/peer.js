#!/usr/bin/env node
// peer.js runs the libas2 npm package (0.8.2) as an AS2 (RFC 4130) trading partner, so that
// the gateway can exchange messages and MDNs with an implementation it does not share code
// with. libas2 does the S/MIME and MDN work; this file only moves bytes over HTTP, reads the
// AS2 headers and reports what happened as JSON.
//
//   node --security-revert=CVE-2023-46809 peer.js receive --port 0 --as2-id LIBAS2 \
//       --cert me.crt --key me.key --partner-id GATEWAY --partner-cert gw.crt --out DIR \
//       [--count N] [--timeout SECONDS] [--require-signed] [--fix NAME,...|all]
//   node peer.js send --url URL --from LIBAS2 --to GATEWAY --cert me.crt --key me.key \
//       --partner-cert gw.crt [--sign sha-256|none] [--encrypt aes256-CBC|none] \
//       [--mdn sync|async|none] [--mdn-sign sha-256|none] [--file F] [--content-type T] \
//       [--transfer base64|binary] [--mdn-to ADDRESS] [--save-mdn FILE] [--timeout SECONDS] \
//       [--fix NAME,...|all]
//
// The receiver needs --security-revert=CVE-2023-46809 on Node 20: libas2 decrypts PKCS#1 v1.5
// key transport with crypto.privateDecrypt(RSA_PKCS1_PADDING), which Node refuses otherwise.
//
// Standard output is JSON lines. The receiver prints {"listening":PORT} once it accepts
// connections, then one {"message":{...}} line per message it has answered. The sender prints
// one {"result":{...}} line. Diagnostics go to standard error.
//
// libas2 0.8.2 has bugs that make some exchanges fail whatever the other side does. Each
// workaround below is off unless named with --fix, and the JSON reports the ones that changed
// an outcome ("fixesUsed"), so a test can say which libas2 bug it had to work around.
'use strict';
const fs = require('fs');
const path = require('path');
const http = require('http');
const https = require('https');
const crypto = require('crypto');
const { AsyncLocalStorage } = require('async_hooks');
const lib = require('libas2');
const { AS2MimeNode, AS2Parser, AS2Crypto, AS2Disposition, AS2EnvelopedData, AS2Constants } = lib;

// ------------------------------------------------------------------------------------ options

function parseArgs(argv) {
  const opts = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) { opts._.push(a); continue; }
    const key = a.slice(2);
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) opts[key] = true;
    else { opts[key] = next; i++; }
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));

function required(name) {
  const v = opts[name];
  if (v === undefined || v === true) fail(`--${name} is required`);
  return v;
}

function fail(message) {
  process.stderr.write(`peer.js: ${message}\n`);
  process.exit(2);
}

const readText = file => fs.readFileSync(file, 'utf8');

// --------------------------------------------------------------------- libas2 bug workarounds

// The fixes that changed an outcome, per message: the receiver runs each exchange in its
// own async context, so concurrent messages do not mix their reports.
const fixContext = new AsyncLocalStorage();
const processFixes = new Set();
const usedFixes = () => fixContext.getStore() || processFixes;
const fixUsed = name => usedFixes().add(name);

// signedBytes returns the bytes AS2Crypto.sign signs for node, which builds to buf, so the
// sender knows the MIC to expect. 'sign-crlf' changes it.
let signedBytes = (node, buf) => AS2Crypto.removeTrailingCrLf(buf);

// endsWithLineBreak tells whether an entity's last CRLF, as nodemailer builds it, is its own
// (a multipart's closing boundary line, text content ending in a newline) rather than one
// nodemailer appends.
function endsWithLineBreak(node) {
  if (/^multipart\//i.test(node.contentType || '')) return true;
  return typeof node.content === 'string' && node.content.endsWith('\n');
}

// Each fix patches libas2 at one place and records its name when the patch changed what
// libas2 would have done.
const FIXES = {
  // AS2Crypto.sign removes the last CRLF of the entity before signing it, because nodemailer
  // ends a part it builds alone with a CRLF that, inside the multipart, belongs to the next
  // boundary. But when the entity itself ends with a line break nodemailer adds none, and the
  // CRLF removed was content: the multipart/report of every MDN (its closing boundary line)
  // and a text payload ending in a newline. Those signatures verify nowhere, libas2 included.
  // Keep the CRLF for those entities.
  'sign-crlf'() {
    const strip = AS2Crypto.removeTrailingCrLf;
    const sign = AS2Crypto.sign;
    let keep = false;
    AS2Crypto.removeTrailingCrLf = buf => {
      if (!keep) return strip(buf);
      if (strip(buf).length !== buf.length) fixUsed('sign-crlf');
      return buf;
    };
    AS2Crypto.sign = async function (node, options) {
      keep = endsWithLineBreak(node);
      try { return await sign.call(AS2Crypto, node, options); } finally { keep = false; }
    };
    signedBytes = (node, buf) => (endsWithLineBreak(node) ? buf : strip(buf));
  },
  // A parsed part keeps its raw text as a binary string (one char per byte), but
  // AS2MimeNode.build turns it back into bytes with Buffer.from(raw), which is UTF-8: every
  // byte >= 0x80 becomes two, and a signature over 8-bit content never verifies.
  'binary-parts'() {
    const build = AS2MimeNode.prototype.build;
    AS2MimeNode.prototype.build = async function () {
      if (this.parsed && this.raw !== undefined) {
        if (/[\u0080-\u00ff]/.test(this.raw)) fixUsed('binary-parts');
        return Buffer.from(this.raw, 'latin1');
      }
      return build.call(this);
    };
  },
  // AS2Parser.parse(Buffer) reaches String.fromCharCode.apply(null, buffer), which overflows
  // the call stack above about 125 KB: big decrypted payloads fail. A latin1 string is the
  // same binary string without the call.
  'big-payload'() {
    const parse = AS2Parser.parse.bind(AS2Parser);
    AS2Parser.parse = content => {
      if (Buffer.isBuffer(content)) {
        if (content.length > 64 * 1024) fixUsed('big-payload');
        return parse(content.toString('latin1'));
      }
      return parse(content);
    };
  },
  // The MIME parser under libas2 (@nhs-llc/emailjs-mime-parser) keeps the line break that
  // precedes a boundary delimiter as the last bytes of the part before it, where RFC 2046
  // section 5.1.1 makes it part of the delimiter. Decoding drops it from base64 and
  // quoted-printable parts, but a 7bit, 8bit or binary part (what AS2 senders put inside
  // multipart/signed over HTTP) gains a CRLF: libas2 hands its user the payload plus two
  // bytes. The signature is not affected (libas2 verifies the raw part). Drop the CRLF.
  'part-crlf'() {
    const transform = AS2Parser.transformNodeLike;
    AS2Parser.transformNodeLike = function (nodeLike, rootNode, parentNode) {
      const node = transform.call(this, nodeLike, rootNode, parentNode);
      const cte = String(node.getHeader('content-transfer-encoding') || '7bit').trim().toLowerCase();
      if (parentNode && /^multipart\//i.test(parentNode.contentType || '') && ['7bit', '8bit', 'binary'].includes(cte) &&
          Buffer.isBuffer(node.content)) {
        const c = node.content;
        const cut = c.length >= 2 && c[c.length - 2] === 0x0d && c[c.length - 1] === 0x0a ? 2 : c.length >= 1 && c[c.length - 1] === 0x0a ? 1 : 0;
        if (cut) { fixUsed('part-crlf'); node.content = c.subarray(0, c.length - cut); }
      }
      return node;
    };
  },
  // libas2 writes error dispositions as "processed/error=TEXT" and "failed/failure=TEXT";
  // RFC 4130 section 7.5.3 spells them "processed/error: TEXT".
  'rfc-disposition'() {
    const proto = lib.AS2DispositionNotification.prototype;
    const toNotification = proto.toNotification;
    proto.toNotification = function () {
      const fields = toNotification.call(this);
      if (fields.Disposition) {
        const rfc = fields.Disposition.replace(/; (processed|failed)\/(error|warning|failure)=(.*)$/,
          (m, state, kind, text) => `; processed/${kind === 'failure' ? 'error' : kind}: ${text}`);
        if (rfc !== fields.Disposition) { fixUsed('rfc-disposition'); fields.Disposition = rfc; }
      }
      return fields;
    };
  },
  // libas2 (through pkijs) verifies only against certificates embedded in the SignedData;
  // the certificate it is given only selects the signer. Signatures from OpenSSL -nocerts,
  // OpenAS2 or BouncyCastle-based products carry none. Add the partner's certificate.
  'embed-partner-cert'() {
    const verify = lib.AS2SignedData.prototype.verify;
    lib.AS2SignedData.prototype.verify = async function (cert, debugMode) {
      if (cert && (!this.signed.certificates || this.signed.certificates.length === 0)) {
        fixUsed('embed-partner-cert');
        this.signed.certificates = [this._toCertificate(cert)];
      }
      return verify.call(this, cert, debugMode);
    };
  },
};

function applyFixes() {
  if (opts.fix === undefined) return [];
  const names = opts.fix === 'all' ? Object.keys(FIXES) : String(opts.fix).split(',').map(s => s.trim()).filter(Boolean);
  for (const name of names) {
    if (!FIXES[name]) fail(`unknown --fix ${name}; known: ${Object.keys(FIXES).join(', ')}, all`);
    FIXES[name]();
  }
  return names;
}

// --------------------------------------------------------------------------- MIME helpers

// The harness parses what arrives over HTTP itself, from a latin1 string, so that its own
// parsing never trips 'big-payload'; libas2's internal parses (after decryption) still do.
function parseMime(buf) { return AS2Parser.parse(buf.toString('latin1')); }

// A MIME entity from an HTTP message: its header lines, as received, then its body.
function mimeFromHTTP(rawHeaders, body) {
  let head = '';
  for (let i = 0; i < rawHeaders.length; i += 2) head += `${rawHeaders[i]}: ${rawHeaders[i + 1]}\r\n`;
  return Buffer.concat([Buffer.from(head + '\r\n', 'latin1'), body]);
}

function contentType(node) { return String(node.getHeader('content-type') || node.contentType || '').toLowerCase(); }
const isPKCS7Mime = n => /^application\/(x-)?pkcs7-mime/.test(contentType(n));
// libas2 has no AuthEnvelopedData (RFC 5083), but an authEnveloped-data entity still goes to
// its decryption, so that the sender gets libas2's own answer (decryption-failed) rather than
// the ciphertext stored as if it were the payload.
const isEnveloped = n => isPKCS7Mime(n) &&
  (/smime-type=\s*"?(auth)?enveloped-data/.test(contentType(n)) || !/smime-type/.test(contentType(n)));
const isCompressed = n => isPKCS7Mime(n) && /smime-type=\s*"?compressed-data/.test(contentType(n));
const isSigned = n => /^multipart\/signed/.test(contentType(n));

function der(node) { return Buffer.isBuffer(node.content) ? node.content : Buffer.from(node.content || '', 'base64'); }

// "sha256", "SHA-256", "rsa-sha256" -> "sha-256", the spelling libas2 takes; null if not a SHA.
function micalg(name) {
  const m = String(name || '').trim().toLowerCase().replace(/^rsa-/, '').match(/^sha-?(1|224|256|384|512)$/);
  return m ? `sha-${m[1]}` : null;
}
const nodeHash = alg => alg.replace('-', '');

// Disposition-Notification-Options (RFC 4130 section 7.3): whether a signed receipt is
// asked for, and the MIC algorithms in order of preference.
function parseDNO(value) {
  const out = { signed: false, micalgs: [] };
  for (const param of String(value || '').split(';')) {
    const eq = param.indexOf('=');
    if (eq < 0) continue;
    const name = param.slice(0, eq).trim().toLowerCase();
    const values = param.slice(eq + 1).split(',').map(s => s.trim());
    // values[0] is the importance (required / optional).
    if (name === 'signed-receipt-protocol') out.signed = values.slice(1).some(v => /^pkcs7-signature$/i.test(v));
    if (name === 'signed-receipt-micalg') out.micalgs = values.slice(1).map(micalg).filter(Boolean);
  }
  return out;
}

function header(headers, name) {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

// The key transport and content encryption OIDs of an EnvelopedData, for the report.
function envelopeAlgorithms(node) {
  try {
    const env = new AS2EnvelopedData(der(node), true).enveloped;
    return {
      keyTransport: env.recipientInfos[0].value.keyEncryptionAlgorithm.algorithmId,
      contentEncryption: env.encryptedContentInfo.contentEncryptionAlgorithm.algorithmId,
    };
  } catch (e) {
    return { error: String(e.message || e) };
  }
}

// POST with a Content-Length (libas2's own client breaks on a chunked MDN; be the partner we
// want others to be).
function post(url, headers, body, timeoutMs) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.request(u, { method: 'POST', headers: { ...headers, 'Content-Length': body.length }, timeout: timeoutMs }, res => {
      const chunks = [];
      res.on('data', c => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

// Headers and body of a built MIME entity.
function splitEntity(built) {
  const sep = built.indexOf('\r\n\r\n');
  return { headers: lib.parseHeaderString(built.slice(0, sep).toString('latin1')), body: built.slice(sep + 4) };
}

// ------------------------------------------------------------------------------- receiver

async function receive() {
  const fixes = applyFixes();
  const as2ID = required('as2-id');
  const cert = readText(required('cert'));
  const key = readText(required('key'));
  const partnerID = required('partner-id');
  const partnerCert = readText(required('partner-cert'));
  const outDir = required('out');
  const count = opts.count === undefined ? 0 : Number(opts.count);
  const timeoutMs = 1000 * Number(opts.timeout || 120);
  fs.mkdirSync(outDir, { recursive: true });

  let received = 0;
  let answered = 0;
  const done = () => {
    answered++;
    if (count && answered >= count) process.exit(0);
  };

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', c => chunks.push(c));
    req.on('end', () => {
      const n = ++received;
      fixContext.run(new Set(), () => handle(n, req, Buffer.concat(chunks), res)
        .catch(e => {
          // A fault of the harness or of libas2 outside the MDN path: answer 500 so the
          // sender sees it, and report it.
          process.stderr.write(`peer.js: message ${n}: ${e.stack || e}\n`);
          if (!res.headersSent) { res.writeHead(500, { 'Content-Type': 'text/plain' }); res.end(`peer.js: ${e.message || e}\n`); }
          return { n, error: String(e.message || e) };
        })
        .then(record => {
          record.fixes = fixes;
          record.fixesUsed = [...usedFixes()];
          fs.writeFileSync(path.join(outDir, `${n}.json`), JSON.stringify(record, null, 2));
          process.stdout.write(JSON.stringify({ message: record }) + '\n');
          done();
        }));
    });
  });

  async function handle(n, req, body, res) {
    const rec = { n, method: req.method, path: req.url, headers: req.headers, bodyBytes: body.length };
    if (req.method !== 'POST') {
      res.writeHead(405, { 'Content-Type': 'text/plain', Allow: 'POST' });
      res.end('POST only\n');
      rec.error = 'not a POST';
      return rec;
    }
    const from = String(header(req.headers, 'as2-from') || '').replace(/^"|"$/g, '');
    const to = String(header(req.headers, 'as2-to') || '').replace(/^"|"$/g, '');
    rec.as2From = from;
    rec.as2To = to;
    if (from !== partnerID || to !== as2ID) {
      res.writeHead(403, { 'Content-Type': 'text/plain' });
      res.end(`unknown AS2-From/AS2-To pair ${from}/${to}\n`);
      rec.error = 'unknown partner';
      return rec;
    }
    const dno = parseDNO(header(req.headers, 'disposition-notification-options'));
    const wantMDN = header(req.headers, 'disposition-notification-to') !== undefined;
    const asyncURL = header(req.headers, 'receipt-delivery-option');
    const mdnSignAlg = dno.signed ? (dno.micalgs[0] || 'sha-256') : null;
    rec.mdnRequested = wantMDN ? (asyncURL ? 'async' : 'sync') : 'none';
    rec.mdnSignAlg = mdnSignAlg;

    const top = await parseMime(mimeFromHTTP(req.rawHeaders, body));
    rec.messageId = top.messageId();
    rec.contentType = contentType(top);

    // Unpack as libas2 can: decrypt, then verify. It has no CMS compression.
    let node = top;
    let mic = null;
    let errorText = null;
    rec.steps = [];
    try {
      if (isEnveloped(node)) {
        rec.envelope = envelopeAlgorithms(node);
        try {
          node = await node.decrypt({ cert, key });
        } catch (e) {
          errorText = 'decryption-failed';
          throw e;
        }
        rec.steps.push('decrypted');
        if (!mic && !isSigned(node)) {
          // RFC 4130 section 7.3.1: for an encrypted, unsigned message the MIC covers the
          // decrypted MIME entity, headers included.
          const alg = dno.micalgs[0] || 'sha-256';
          const entity = Buffer.from(node.raw, 'latin1');
          mic = { mic: crypto.createHash(nodeHash(alg)).update(entity).digest('base64'), algorithm: alg };
        }
      }
      refuseCompressed(node);
      if (isSigned(node)) {
        rec.micalg = (contentType(node).match(/micalg=\s*"?([^;"\s]+)/) || [])[1] || null;
        let digest;
        try {
          digest = await AS2Crypto.verify(node, { cert: partnerCert }, true);
        } catch (e) {
          errorText = 'authentication-failed';
          throw e;
        }
        if (!digest) {
          errorText = 'authentication-failed';
          throw new Error('the signature does not verify with the partner certificate');
        }
        mic = { mic: digest.digest.toString('base64'), algorithm: digest.algorithm.toLowerCase() };
        rec.steps.push(`verified ${mic.algorithm}`);
        node = node.childNodes[0];
        // Compressed before signing (RFC 5402 section 3): the signed entity is compressed.
        refuseCompressed(node);
      } else if (opts['require-signed']) {
        errorText = 'insufficient-message-security';
        throw new Error('the message is not signed');
      }
      if (!mic) {
        // Neither signed nor encrypted: the MIC covers the content alone (section 7.3.1).
        const alg = dno.micalgs[0] || 'sha-256';
        mic = { mic: crypto.createHash(nodeHash(alg)).update(payloadBytes(node)).digest('base64'), algorithm: alg };
      }
      const payload = payloadBytes(node);
      fs.writeFileSync(path.join(outDir, `${n}.payload`), payload);
      rec.payloadBytes = payload.length;
      rec.payloadSha256 = crypto.createHash('sha256').update(payload).digest('hex');
      rec.payloadContentType = contentType(node);
      rec.mic = mic;
    } catch (e) {
      if (e instanceof CompressedError) errorText = 'decompression-failed';
      errorText = errorText || 'unexpected-processing-error';
      rec.error = String(e.message || e);
      mic = null;
    }

    const mdn = await buildMDN({
      original: top, as2ID, partnerID, mic, errorText, signAlg: mdnSignAlg, cert, key,
      explanation: errorText ? `The message could not be processed: ${rec.error}` : AS2Constants.EXPLANATION.SUCCESS,
    });
    const built = await mdn.build();
    const { headers: mdnHeaders, body: mdnBody } = splitEntity(built);
    rec.disposition = (mdnBody.toString('latin1').match(/^Disposition:\s*(.*?)\r?$/mi) || [])[1] || null;

    if (!wantMDN) {
      res.writeHead(200, { 'Content-Length': 0 });
      res.end();
      rec.mdn = 'none';
    } else if (asyncURL) {
      res.writeHead(200, { 'Content-Length': 0 });
      res.end();
      try {
        const r = await post(asyncURL, mdnHeaders, mdnBody, timeoutMs);
        rec.mdn = 'async';
        rec.asyncStatus = r.status;
      } catch (e) {
        rec.mdn = 'async';
        rec.asyncError = String(e.message || e);
      }
    } else {
      res.writeHead(200, { ...mdnHeaders, 'Content-Length': mdnBody.length });
      res.end(mdnBody);
      rec.mdn = 'sync';
    }
    return rec;
  }

  server.listen(Number(opts.port || 0), '127.0.0.1', () => {
    process.stdout.write(JSON.stringify({ listening: server.address().port }) + '\n');
  });
  setTimeout(() => {
    process.stderr.write(`peer.js: ${answered} of ${count || 'any'} messages answered when the ${timeoutMs / 1000} s timeout ran out\n`);
    process.exit(count && answered < count ? 1 : 0);
  }, timeoutMs).unref();
}

// libas2 has no CMS CompressedData (RFC 3274): a compressed layer, wherever it is, fails the
// message instead of being stored as the payload.
class CompressedError extends Error {}
function refuseCompressed(node) {
  if (isCompressed(node)) throw new CompressedError('libas2 does not implement CMS CompressedData (RFC 3274)');
}

// The content bytes of a leaf MIME node, transfer encoding removed.
function payloadBytes(node) {
  const c = node.content;
  if (c === undefined || c === null) return Buffer.alloc(0);
  if (Buffer.isBuffer(c)) return c;
  if (c instanceof Uint8Array) return Buffer.from(c);
  return Buffer.from(String(c), 'latin1');
}

async function buildMDN({ original, as2ID, partnerID, mic, errorText, signAlg, cert, key, explanation }) {
  const notification = {
    originalMessageId: original.messageId(),
    finalRecipient: as2ID,
    disposition: { type: 'automatic-action', processed: true },
  };
  if (errorText) notification.disposition.description = { type: 'error', text: errorText };
  if (mic) notification.receivedContentMic = mic;
  let mime = new AS2Disposition({ explanation, notification }).toMimeNode();
  if (signAlg) mime = await mime.sign({ cert, key, algorithm: signAlg });
  mime.setHeader([
    { key: 'AS2-From', value: as2ID },
    { key: 'AS2-To', value: partnerID },
    { key: 'AS2-Version', value: AS2Constants.AS2_VERSION },
  ]);
  mime.messageId(true);
  return mime;
}

// --------------------------------------------------------------------------------- sender

const SAMPLE = 'ISA*00*          *00*          *ZZ*LIBAS2         *ZZ*GATEWAY        *260101*1200*U*00401*000000001*0*T*>~\r\n' +
  'GS*IN*LIBAS2*GATEWAY*20260101*1200*1*X*004010~\r\nST*810*0001~\r\nSE*2*0001~\r\nGE*1*1~\r\nIEA*1*000000001~\r\n';

async function send() {
  const fixes = applyFixes();
  const url = required('url');
  const from = required('from');
  const to = required('to');
  const cert = readText(required('cert'));
  const key = readText(required('key'));
  const partnerCert = readText(required('partner-cert'));
  const signAlg = opts.sign === undefined ? 'sha-256' : opts.sign === 'none' ? null : micalg(opts.sign);
  if (opts.sign !== undefined && opts.sign !== 'none' && !signAlg) fail(`--sign ${opts.sign}: want sha-1, sha-256, sha-384, sha-512 or none`);
  const encryption = opts.encrypt === undefined ? 'aes256-CBC' : opts.encrypt === 'none' ? null : opts.encrypt;
  const mdnMode = opts.mdn || 'sync';
  if (!['sync', 'async', 'none'].includes(mdnMode)) fail(`--mdn ${mdnMode}: want sync, async or none`);
  const mdnSign = opts['mdn-sign'] === undefined ? 'sha-256' : opts['mdn-sign'] === 'none' ? null : micalg(opts['mdn-sign']);
  const transfer = opts.transfer || 'base64';
  const timeoutMs = 1000 * Number(opts.timeout || 60);
  const content = opts.file ? fs.readFileSync(opts.file) : Buffer.from(SAMPLE, 'latin1');
  const type = opts['content-type'] || 'application/edi-x12';

  // libas2 canonicalises text/* content, which it can only do to a string.
  let node = new AS2MimeNode({
    filename: opts.file ? path.basename(opts.file) : 'invoice.edi',
    contentType: type,
    content: /^text\//i.test(type) ? content.toString('latin1') : content,
  });

  // The MIC the partner must return (RFC 4130 section 7.3.1): over the signed entity as
  // libas2 signed it, else over the entity that is encrypted, else over the content.
  let micAlg = signAlg || mdnSign || 'sha-256';
  let expectedMIC;
  if (signAlg) {
    node = await node.sign({ cert, key, algorithm: signAlg });
    const signed = signedBytes(node.childNodes[0], await AS2Crypto.buildNode(node.childNodes[0]));
    expectedMIC = crypto.createHash(nodeHash(signAlg)).update(signed).digest('base64');
  } else if (encryption) {
    lib.canonicalTransform(node);
    expectedMIC = crypto.createHash(nodeHash(micAlg)).update(await AS2Crypto.buildNode(node)).digest('base64');
  } else {
    expectedMIC = crypto.createHash(nodeHash(micAlg)).update(content).digest('base64');
  }
  if (encryption) node = await node.encrypt({ cert: partnerCert, encryption });

  node.setHeader([
    { key: 'AS2-From', value: from },
    { key: 'AS2-To', value: to },
    { key: 'AS2-Version', value: AS2Constants.AS2_VERSION },
  ]);
  node.messageId(true);
  const messageId = node.messageId();

  let asyncMDN;
  if (mdnMode !== 'none') {
    node.setHeader('Disposition-Notification-To', opts['mdn-to'] || 'mailto:as2@libas2.invalid');
    if (mdnSign) {
      node.setHeader('Disposition-Notification-Options',
        `signed-receipt-protocol=required, pkcs7-signature; signed-receipt-micalg=required, ${mdnSign}`);
    }
    if (mdnMode === 'async') {
      asyncMDN = await listenForMDN(timeoutMs);
      node.setHeader('Receipt-Delivery-Option', asyncMDN.url);
    }
  }

  const built = await node.build();
  let { headers, body } = splitEntity(built);
  if (transfer === 'binary' && /base64/i.test(headers['Content-Transfer-Encoding'] || '')) {
    body = Buffer.from(body.toString('latin1'), 'base64');
    headers['Content-Transfer-Encoding'] = 'binary';
  }

  const result = {
    messageId, sign: signAlg, encrypt: encryption, mdn: mdnMode, mdnSign, expectedMIC, micAlg, fixes, ok: false,
  };
  // libas2's own client: it sends the body chunked, as libas2 users do.
  const resp = await lib.request({ url, headers, body, method: 'POST', timeout: timeoutMs });
  result.httpStatus = resp.statusCode;
  if (resp.statusCode < 200 || resp.statusCode > 299) {
    result.error = `HTTP ${resp.statusCode}: ${resp.rawBody.toString('latin1').slice(0, 500)}`;
    return finish(result);
  }
  let raw;
  if (mdnMode === 'none') {
    result.ok = true;
    return finish(result);
  } else if (mdnMode === 'sync') {
    result.mdnTransfer = resp.headers['transfer-encoding'] ? `chunked` : `content-length`;
    raw = mimeFromHTTP(resp.rawHeaders, resp.rawBody);
  } else {
    const got = await asyncMDN.received;
    raw = mimeFromHTTP(got.rawHeaders, got.body);
  }
  if (opts['save-mdn']) fs.writeFileSync(opts['save-mdn'], raw);
  await checkMDN(raw, partnerCert, mdnSign, messageId, expectedMIC, micAlg, result);
  return finish(result);
}

// A local server for the asynchronous MDN, on a free port; it takes one POST.
function listenForMDN(timeoutMs) {
  return new Promise((resolveListen, rejectListen) => {
    let resolveMDN, rejectMDN;
    const received = new Promise((res, rej) => { resolveMDN = res; rejectMDN = rej; });
    const server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', c => chunks.push(c));
      req.on('end', () => {
        res.writeHead(200, { 'Content-Length': 0 });
        res.end();
        server.close();
        resolveMDN({ rawHeaders: req.rawHeaders, body: Buffer.concat(chunks) });
      });
    });
    server.on('error', rejectListen);
    server.listen(0, '127.0.0.1', () => {
      setTimeout(() => rejectMDN(new Error(`no asynchronous MDN within ${timeoutMs} ms`)), timeoutMs).unref();
      resolveListen({ url: `http://127.0.0.1:${server.address().port}/mdn`, received });
    });
  });
}

async function checkMDN(raw, partnerCert, mdnSign, messageId, expectedMIC, micAlg, result) {
  const mdn = await parseMime(raw);
  result.mdnContentType = contentType(mdn);
  result.mdnSigned = isSigned(mdn);
  let disposition;
  try {
    if (result.mdnSigned) {
      disposition = await mdn.dispositionIn({ cert: partnerCert });
      result.mdnSignatureOk = true;
    } else {
      disposition = await mdn.dispositionIn();
    }
  } catch (e) {
    if (result.mdnSigned) result.mdnSignatureOk = false;
    result.error = `MDN: ${e.message || e}`;
    return;
  }
  if (!disposition.notification) {
    result.error = 'MDN: no multipart/report with report-type=disposition-notification';
    return;
  }
  const n = disposition.notification;
  const report = lib.getReportNode(mdn);
  result.disposition = (payloadBytes(report.childNodes[1]).toString('latin1').match(/^Disposition:\s*(.*?)\r?$/mi) || [])[1] || null;
  result.originalMessageId = n.originalMessageId;
  result.receivedMIC = n.receivedContentMic || null;
  if (n.receivedContentMic) {
    result.micOk = n.receivedContentMic.mic === expectedMIC && micalg(n.receivedContentMic.algorithm) === micAlg;
  }
  const processed = n.disposition && n.disposition.processed === true && !n.disposition.description;
  const problems = [];
  if (n.originalMessageId !== messageId) problems.push(`Original-Message-ID ${n.originalMessageId}, sent ${messageId}`);
  if (!processed) problems.push(`disposition ${result.disposition}`);
  if (mdnSign && !result.mdnSigned) problems.push('unsigned MDN where a signed one was asked for');
  // An unsigned MDN may leave out the MIC; a signed one must carry it.
  if (result.micOk === false || (mdnSign && result.micOk === undefined)) problems.push(`MIC ${JSON.stringify(result.receivedMIC)}, expected ${expectedMIC}, ${micAlg}`);
  if (problems.length) result.error = problems.join('; ');
  result.ok = problems.length === 0;
}

function finish(result) {
  result.fixesUsed = [...usedFixes()];
  process.stdout.write(JSON.stringify({ result }) + '\n');
  process.exit(result.ok ? 0 : 1);
}

// ----------------------------------------------------------------------------------- main

const commands = { receive, send };
const command = commands[opts._[0]];
if (!command) fail('usage: peer.js receive|send [options] (see the comment at the top of peer.js)');
command().catch(e => {
  process.stderr.write(`peer.js: ${e.stack || e}\n`);
  if (opts._[0] === 'send') {
    process.stdout.write(JSON.stringify({ result: { ok: false, error: String(e.message || e), fixesUsed: [...usedFixes()] } }) + '\n');
  }
  process.exit(2);
});
