// BCPeer makes and reads CMS structures with BouncyCastle, the CMS engine inside mendelson,
// OpenAS2 and several other AS2 products, so that the Go tests can exchange messages with it.
//
//   compress [--stream] IN OUT       CompressedData (zlib); --stream writes BER as it goes
//   decompress IN OUT                CompressedData, BER or DER, read as a stream
//   sign --hash SHA256 [--pss] --cert C --key K [--nocerts] IN OUT
//                                    detached SignedData, DER
//   verify --cert C --content IN SIG exit 0 only when every signer verifies with C
//   encrypt --cipher AES256_CBC [--oaep SHA-256[:MGF1-SHA1]] --cert C IN OUT
//                                    EnvelopedData, or AuthEnvelopedData for *_GCM, DER
//   decrypt --cert C --key K IN OUT  EnvelopedData or AuthEnvelopedData
//
// Keys are PKCS#8 PEM, certificates PEM or DER. verify and decrypt print to standard output
// the algorithms they met, one "name=OID" per line, for the tests to check.

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.File;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.FileReader;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.PrivateKey;
import java.security.Security;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.MGF1ParameterSpec;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import javax.crypto.spec.OAEPParameterSpec;
import javax.crypto.spec.PSource;

import org.bouncycastle.asn1.ASN1Encoding;
import org.bouncycastle.asn1.ASN1ObjectIdentifier;
import org.bouncycastle.asn1.cms.AuthEnvelopedData;
import org.bouncycastle.asn1.cms.CMSObjectIdentifiers;
import org.bouncycastle.asn1.cms.ContentInfo;
import org.bouncycastle.asn1.pkcs.PKCSObjectIdentifiers;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.asn1.x509.AlgorithmIdentifier;
import org.bouncycastle.cert.jcajce.JcaCertStore;
import org.bouncycastle.cms.CMSAlgorithm;
import org.bouncycastle.cms.CMSAuthEnvelopedData;
import org.bouncycastle.cms.CMSAuthEnvelopedDataGenerator;
import org.bouncycastle.cms.CMSCompressedData;
import org.bouncycastle.cms.CMSCompressedDataGenerator;
import org.bouncycastle.cms.CMSCompressedDataParser;
import org.bouncycastle.cms.CMSCompressedDataStreamGenerator;
import org.bouncycastle.cms.CMSEnvelopedData;
import org.bouncycastle.cms.CMSEnvelopedDataGenerator;
import org.bouncycastle.cms.CMSProcessableFile;
import org.bouncycastle.cms.CMSSignedData;
import org.bouncycastle.cms.CMSSignedDataGenerator;
import org.bouncycastle.cms.CMSSignerDigestMismatchException;
import org.bouncycastle.cms.CMSVerifierCertificateNotValidException;
import org.bouncycastle.cms.RecipientInformation;
import org.bouncycastle.cms.SignerInformation;
import org.bouncycastle.cms.jcajce.JcaSimpleSignerInfoGeneratorBuilder;
import org.bouncycastle.cms.jcajce.JcaSimpleSignerInfoVerifierBuilder;
import org.bouncycastle.cms.jcajce.JceCMSContentEncryptorBuilder;
import org.bouncycastle.cms.jcajce.JceKeyTransAuthEnvelopedRecipient;
import org.bouncycastle.cms.jcajce.JceKeyTransEnvelopedRecipient;
import org.bouncycastle.cms.jcajce.JceKeyTransRecipientId;
import org.bouncycastle.cms.jcajce.JceKeyTransRecipientInfoGenerator;
import org.bouncycastle.cms.jcajce.ZlibCompressor;
import org.bouncycastle.cms.jcajce.ZlibExpanderProvider;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.openssl.jcajce.JcaPEMKeyConverter;
import org.bouncycastle.operator.OutputAEADEncryptor;
import org.bouncycastle.operator.OutputEncryptor;
import org.bouncycastle.operator.jcajce.JcaAlgorithmParametersConverter;

public final class BCPeer {
    private static final String BC = BouncyCastleProvider.PROVIDER_NAME;

    /** Exit status of a command that ran but whose check failed (a signature that does not verify). */
    private static final int FAILED = 1;
    /** Exit status of a usage or processing error. */
    private static final int ERROR = 2;

    public static void main(String[] argv) {
        Security.addProvider(new BouncyCastleProvider());
        if (argv.length == 0) {
            usage("no command");
        }
        Args a = new Args(argv);
        try {
            switch (argv[0]) {
                case "compress" -> compress(a);
                case "decompress" -> decompress(a);
                case "sign" -> sign(a);
                case "verify" -> System.exit(verify(a) ? 0 : FAILED);
                case "encrypt" -> encrypt(a);
                case "decrypt" -> decrypt(a);
                default -> usage("unknown command " + argv[0]);
            }
        } catch (Exception e) {
            System.err.println("BCPeer " + argv[0] + ": " + e);
            for (Throwable c = e.getCause(); c != null; c = c.getCause()) {
                System.err.println("  caused by: " + c);
            }
            System.exit(ERROR);
        }
    }

    private static void usage(String why) {
        System.err.println("BCPeer: " + why);
        System.err.println("usage: BCPeer compress [--stream] IN OUT | decompress IN OUT");
        System.err.println("       | sign --hash H [--pss] --cert C --key K [--nocerts] IN OUT");
        System.err.println("       | verify --cert C --content IN SIG");
        System.err.println("       | encrypt --cipher NAME [--oaep H[:MGF1-H]] --cert C IN OUT");
        System.err.println("       | decrypt --cert C --key K IN OUT");
        System.exit(ERROR);
    }

    /** Args splits "--name value" options (and bare "--flag"s) from positional arguments. */
    private static final class Args {
        private static final List<String> FLAGS = List.of("--stream", "--pss", "--nocerts");
        final Map<String, String> opts = new HashMap<>();
        final List<String> pos = new ArrayList<>();

        Args(String[] argv) {
            for (int i = 1; i < argv.length; i++) {
                String s = argv[i];
                if (FLAGS.contains(s)) {
                    opts.put(s, "");
                } else if (s.startsWith("--")) {
                    if (i + 1 >= argv.length) {
                        usage(s + " needs a value");
                    }
                    opts.put(s, argv[++i]);
                } else {
                    pos.add(s);
                }
            }
        }

        String opt(String name) {
            String v = opts.get(name);
            if (v == null) {
                usage(name + " is required");
            }
            return v;
        }

        boolean flag(String name) {
            return opts.containsKey(name);
        }

        String arg(int i, int want) {
            if (pos.size() != want) {
                usage("want " + want + " file arguments, got " + pos);
            }
            return pos.get(i);
        }
    }

    // Compression (RFC 3274).

    private static void compress(Args a) throws Exception {
        File in = new File(a.arg(0, 2));
        String out = a.arg(1, 2);
        if (a.flag("--stream")) {
            // The stream generator writes indefinite lengths and cuts the compressed stream
            // into OCTET STRING fragments, as mendelson does.
            try (OutputStream file = new BufferedOutputStream(new FileOutputStream(out));
                 InputStream content = new BufferedInputStream(new FileInputStream(in))) {
                OutputStream cms = new CMSCompressedDataStreamGenerator().open(file, new ZlibCompressor());
                content.transferTo(cms);
                cms.close();
            }
            return;
        }
        CMSCompressedData cd = new CMSCompressedDataGenerator().generate(new CMSProcessableFile(in), new ZlibCompressor());
        Files.write(Path.of(out), cd.toASN1Structure().getEncoded(ASN1Encoding.DER));
    }

    private static void decompress(Args a) throws Exception {
        try (InputStream in = new BufferedInputStream(new FileInputStream(a.arg(0, 2)));
             OutputStream out = new BufferedOutputStream(new FileOutputStream(a.arg(1, 2)))) {
            CMSCompressedDataParser p = new CMSCompressedDataParser(in);
            p.getContent(new ZlibExpanderProvider()).getContentStream().transferTo(out);
        }
    }

    // Signatures (RFC 5652 §5, RFC 4056).

    private static void sign(Args a) throws Exception {
        X509Certificate cert = readCertificate(a.opt("--cert"));
        PrivateKey key = readKey(a.opt("--key"));
        String hash = a.opt("--hash").replace("-", "").toUpperCase();
        String alg = hash + (a.flag("--pss") ? "withRSAandMGF1" : "withRSA");

        CMSSignedDataGenerator gen = new CMSSignedDataGenerator();
        gen.addSignerInfoGenerator(new JcaSimpleSignerInfoGeneratorBuilder().setProvider(BC).build(alg, key, cert));
        if (!a.flag("--nocerts")) {
            gen.addCertificates(new JcaCertStore(List.of(cert)));
        }
        CMSSignedData sd = gen.generate(new CMSProcessableFile(new File(a.arg(0, 2))), false);
        Files.write(Path.of(a.arg(1, 2)), sd.toASN1Structure().getEncoded(ASN1Encoding.DER));
    }

    private static boolean verify(Args a) throws Exception {
        X509Certificate cert = readCertificate(a.opt("--cert"));
        File content = new File(a.opt("--content"));
        byte[] sig = Files.readAllBytes(Path.of(a.arg(0, 1)));
        CMSSignedData sd = new CMSSignedData(new CMSProcessableFile(content), sig);
        Collection<SignerInformation> signers = sd.getSignerInfos().getSigners();
        if (signers.isEmpty()) {
            System.err.println("BCPeer verify: no signer");
            return false;
        }
        boolean ok = true;
        for (SignerInformation si : signers) {
            System.out.println("digest=" + si.getDigestAlgOID());
            System.out.println("signature=" + si.getEncryptionAlgOID());
            try {
                if (!si.verify(new JcaSimpleSignerInfoVerifierBuilder().setProvider(BC).build(cert))) {
                    System.err.println("BCPeer verify: the signature does not verify with the certificate");
                    ok = false;
                }
            } catch (CMSSignerDigestMismatchException | CMSVerifierCertificateNotValidException e) {
                // Verdicts on the message, not failures of the program.
                System.err.println("BCPeer verify: " + e.getMessage());
                ok = false;
            }
        }
        return ok;
    }

    // Encryption (RFC 5652 §6, RFC 5083, RFC 3560).

    private static void encrypt(Args a) throws Exception {
        X509Certificate cert = readCertificate(a.opt("--cert"));
        ASN1ObjectIdentifier cipher = cipher(a.opt("--cipher"));
        JceKeyTransRecipientInfoGenerator recipient = a.flag("--oaep")
                ? new JceKeyTransRecipientInfoGenerator(cert, oaep(a.opt("--oaep")))
                : new JceKeyTransRecipientInfoGenerator(cert);
        recipient.setProvider(BC);
        CMSProcessableFile content = new CMSProcessableFile(new File(a.arg(0, 2)));
        OutputEncryptor enc = new JceCMSContentEncryptorBuilder(cipher).setProvider(BC).build();

        ContentInfo ci;
        if (enc instanceof OutputAEADEncryptor aead) {
            CMSAuthEnvelopedDataGenerator gen = new CMSAuthEnvelopedDataGenerator();
            gen.addRecipientInfoGenerator(recipient);
            ci = gen.generate(content, aead).toASN1Structure();
        } else {
            CMSEnvelopedDataGenerator gen = new CMSEnvelopedDataGenerator();
            gen.addRecipientInfoGenerator(recipient);
            ci = gen.generate(content, enc).toASN1Structure();
        }
        Files.write(Path.of(a.arg(1, 2)), ci.getEncoded(ASN1Encoding.DER));
    }

    private static ASN1ObjectIdentifier cipher(String name) {
        return switch (name) {
            case "DES3" -> CMSAlgorithm.DES_EDE3_CBC;
            case "AES128_CBC" -> CMSAlgorithm.AES128_CBC;
            case "AES192_CBC" -> CMSAlgorithm.AES192_CBC;
            case "AES256_CBC" -> CMSAlgorithm.AES256_CBC;
            case "AES128_GCM" -> CMSAlgorithm.AES128_GCM;
            case "AES192_GCM" -> CMSAlgorithm.AES192_GCM;
            case "AES256_GCM" -> CMSAlgorithm.AES256_GCM;
            default -> throw new IllegalArgumentException("unknown cipher " + name);
        };
    }

    /** oaep turns "SHA-256" or "SHA-256:MGF1-SHA1" into RSAES-OAEP parameters. */
    private static AlgorithmIdentifier oaep(String spec) throws Exception {
        String hash = spec;
        String mgfHash = spec;
        int colon = spec.indexOf(':');
        if (colon >= 0) {
            hash = spec.substring(0, colon);
            String mgf = spec.substring(colon + 1);
            if (!mgf.startsWith("MGF1-")) {
                throw new IllegalArgumentException("mask generation " + mgf + " is not MGF1-<hash>");
            }
            mgfHash = mgf.substring("MGF1-".length());
        }
        OAEPParameterSpec params = new OAEPParameterSpec(javaHash(hash), "MGF1",
                new MGF1ParameterSpec(javaHash(mgfHash)), PSource.PSpecified.DEFAULT);
        return new JcaAlgorithmParametersConverter().getAlgorithmIdentifier(PKCSObjectIdentifiers.id_RSAES_OAEP, params);
    }

    /** javaHash spells SHA1, SHA256, SHA-256... the way the JCA names digests. */
    private static String javaHash(String h) {
        String s = h.toUpperCase().replace("-", "");
        if (!s.startsWith("SHA") || s.length() < 4) {
            throw new IllegalArgumentException("unknown hash " + h);
        }
        return s.equals("SHA1") ? "SHA-1" : "SHA-" + s.substring(3);
    }

    private static void decrypt(Args a) throws Exception {
        X509Certificate cert = readCertificate(a.opt("--cert"));
        PrivateKey key = readKey(a.opt("--key"));
        byte[] in = Files.readAllBytes(Path.of(a.arg(0, 2)));
        ContentInfo ci = ContentInfo.getInstance(in);
        JceKeyTransRecipientId id = new JceKeyTransRecipientId(cert);
        RecipientInformation ri;
        byte[] content;
        if (ci.getContentType().equals(CMSObjectIdentifiers.authEnvelopedData)) {
            CMSAuthEnvelopedData ad = new CMSAuthEnvelopedData(ci);
            ri = ad.getRecipientInfos().get(id);
            if (ri == null) {
                throw new IllegalArgumentException("no recipient info for the certificate");
            }
            content = ri.getContent(new JceKeyTransAuthEnvelopedRecipient(key).setProvider(BC));
            AuthEnvelopedData asn1 = AuthEnvelopedData.getInstance(ci.getContent());
            System.out.println("content=" + asn1.getAuthEncryptedContentInfo().getContentEncryptionAlgorithm().getAlgorithm());
        } else {
            CMSEnvelopedData ed = new CMSEnvelopedData(ci);
            ri = ed.getRecipientInfos().get(id);
            if (ri == null) {
                throw new IllegalArgumentException("no recipient info for the certificate");
            }
            content = ri.getContent(new JceKeyTransEnvelopedRecipient(key).setProvider(BC));
            System.out.println("content=" + ed.getEncryptionAlgOID());
        }
        System.out.println("keytransport=" + ri.getKeyEncryptionAlgOID());
        Files.write(Path.of(a.arg(1, 2)), content);
    }

    // Keys and certificates.

    private static X509Certificate readCertificate(String path) throws Exception {
        try (InputStream in = new FileInputStream(path)) {
            return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
        }
    }

    private static PrivateKey readKey(String path) throws Exception {
        try (PEMParser p = new PEMParser(new FileReader(path))) {
            Object o = p.readObject();
            if (!(o instanceof PrivateKeyInfo info)) {
                throw new IllegalArgumentException(path + " holds no PKCS#8 private key");
            }
            return new JcaPEMKeyConverter().setProvider(BC).getPrivateKey(info);
        }
    }
}
