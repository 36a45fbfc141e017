package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "modernc.org/sqlite" // reads the gateways' databases after a run
)

// identity is an AS2 station's key and certificate, kept in memory and written as PEM files.
type identity struct {
	id       string
	key      *rsa.PrivateKey
	cert     *x509.Certificate
	certPath string
	keyPath  string
}

// newIdentity makes an RSA-2048 key and a self-signed certificate for id under dir.
func newIdentity(dir, id string) (*identity, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: id},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	base := filepath.Join(dir, strings.ToLower(id))
	it := &identity{id: id, key: key, cert: cert, certPath: base + ".crt", keyPath: base + ".key"}
	if err := os.WriteFile(it.certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(it.keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600); err != nil {
		return nil, err
	}
	return it, nil
}

// partnerSpec is one partner in a gateway's configuration.
type partnerSpec struct {
	id, url, certPath string
	concurrency       int // sends in flight to the partner; 0: the gateway's workers
}

// gateway is one `as2gate serve` process with its own folder, configuration and database.
type gateway struct {
	name       string
	bin        string
	dir        string
	as2, admin string // listen addresses
	token      string
	station    *identity
	partners   []partnerSpec
	workers    int
	pprof      bool

	cmd    *exec.Cmd
	exited chan struct{}
	log    string // the process's standard error and output
}

func (g *gateway) as2URL() string   { return "http://" + g.as2 + "/as2" }
func (g *gateway) adminURL() string { return "http://" + g.admin }
func (g *gateway) dbPath() string   { return filepath.Join(g.dir, "data", "as2gate.db") }

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// newGateway prepares a gateway's folder, addresses and token; start runs it.
func newGateway(bin, dir, name string, station *identity, workers int, pprof bool) (*gateway, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	as2, err := freeAddr()
	if err != nil {
		return nil, err
	}
	admin, err := freeAddr()
	if err != nil {
		return nil, err
	}
	tok := make([]byte, 24)
	rand.Read(tok)
	return &gateway{name: name, bin: bin, dir: dir, as2: as2, admin: admin, token: hex.EncodeToString(tok),
		station: station, workers: workers, pprof: pprof}, nil
}

// config is the gateway's YAML: the production settings, with room for large files and as
// many sends in flight to one partner as there are workers.
func (g *gateway) config() string {
	var b strings.Builder
	fmt.Fprintf(&b, `data_dir: data
listen: {as2: %q, admin: %q}
public_url: %s
api_tokens: [%q]
allow_private_mdn_urls: true
workers: %d
log: {format: json, level: info}
stations:
  - {as2_id: %s, key: %s, cert: %s}
partners:
`, g.as2, g.admin, g.as2URL(), g.token, g.workers, g.station.id, g.station.keyPath, g.station.certPath)
	for _, p := range g.partners {
		fmt.Fprintf(&b, `  - as2_id: %s
    station: %s
    url: %s
    certs: [%s]
    sign: sha256
    encrypt: aes256-cbc
    mdn: sync
    mdn_signed: true
    concurrency: %d
    max_size: 8GiB
    timeouts: {transmission: 30m}
    retry:
      failed: {strategy: fixed, interval: 1s, duration: 1m}
`, p.id, g.station.id, p.url, p.certPath, cmp.Or(p.concurrency, g.workers))
	}
	return b.String()
}

// start runs the gateway and returns once /healthz answers.
func (g *gateway) start(ctx context.Context) error {
	cfgPath := filepath.Join(g.dir, "as2gate.yaml")
	if err := os.WriteFile(cfgPath, []byte(g.config()), 0o600); err != nil {
		return err
	}
	g.log = filepath.Join(g.dir, "as2gate.log")
	logFile, err := os.Create(g.log)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(g.bin, "serve", "--config", cfgPath)
	cmd.Dir = g.dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = os.Environ()
	if g.pprof {
		cmd.Env = append(cmd.Env, "AS2GATE_PPROF=1")
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: starting %s: %w", g.name, g.bin, err)
	}
	g.cmd, g.exited = cmd, make(chan struct{})
	go func() {
		cmd.Wait()
		close(g.exited)
	}()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-g.exited:
			return fmt.Errorf("%s exited at start (%v); log: %s\n%s", g.name, cmd.ProcessState, g.log, tail(g.log))
		case <-ctx.Done():
			g.stop()
			return ctx.Err()
		default:
		}
		if resp, err := client.Get(g.adminURL() + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			g.stop()
			return fmt.Errorf("%s: /healthz did not answer within 60s; log: %s", g.name, g.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the gateway with SIGTERM (a graceful shutdown) and SIGKILL after 30 s.
func (g *gateway) stop() {
	if g.cmd == nil {
		return
	}
	syscall.Kill(-g.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-g.exited:
	case <-time.After(30 * time.Second):
		syscall.Kill(-g.cmd.Process.Pid, syscall.SIGKILL)
		<-g.exited
	}
	g.cmd = nil
}

// peakRSS is the process's peak resident set (VmHWM) in MiB.
func (g *gateway) peakRSS() (float64, error) {
	if g.cmd == nil {
		return 0, errors.New(g.name + " is not running")
	}
	return vmHWM(g.cmd.Process.Pid)
}

func vmHWM(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest) // "123456 kB"
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseFloat(f[0], 64)
				return kb / 1024, err
			}
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// db opens the gateway's database for reading, beside the running gateway (WAL allows it).
func (g *gateway) db() (*sql.DB, error) {
	return sql.Open("sqlite", "file:"+g.dbPath()+"?mode=ro&_pragma=busy_timeout(5000)")
}

// tail returns the end of a log file, for an error message.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
