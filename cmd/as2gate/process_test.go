//go:build unix

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildGateway builds the as2gate command into a temporary folder of t and returns its path.
// The test binary runs in cmd/as2gate, so "." is this command.
func buildGateway(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("building as2gate needs the go command: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "as2gate")
	out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freeAddr returns a loopback address with a port nobody listened on a moment ago. Another
// program may take it before the gateway binds it: gatewayProcess.start then picks again.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// gatewayProcess is `as2gate serve` running as a separate process in its own process group,
// so that a test can kill it as an operating system would: SIGKILL, no chance to clean up.
type gatewayProcess struct {
	t     *testing.T
	name  string
	bin   string
	dir   string // holds the configuration, the data folder and one log per start
	token string
	// env is the process's environment; nil inherits the test's.
	env []string
	// config returns the YAML configuration for the listen addresses as2 and admin.
	config func(as2, admin string) string

	as2, admin string // listen addresses, kept across restarts while they can be bound
	cmd        *exec.Cmd
	exited     chan struct{}
	starts     int
}

// dataDir is the gateway's data_dir.
func (p *gatewayProcess) dataDir() string { return filepath.Join(p.dir, "data") }

// as2URL is where partners POST messages to this gateway.
func (p *gatewayProcess) as2URL() string { return "http://" + p.as2 + "/as2" }

// start runs the gateway and returns once /healthz answers. When a listen address turned out
// to be taken, it picks new ones and tries again.
func (p *gatewayProcess) start() {
	p.t.Helper()
	for try := 0; ; try++ {
		if p.as2 == "" || p.admin == "" {
			p.as2, p.admin = freeAddr(p.t), freeAddr(p.t)
		}
		log, err := p.run()
		if err == nil {
			return
		}
		if try < 4 && strings.Contains(log, "address already in use") {
			p.as2, p.admin = "", ""
			continue
		}
		p.t.Fatalf("%s: %v\n%s", p.name, err, log)
	}
}

// run starts the process once and waits for /healthz; on failure it returns the log.
func (p *gatewayProcess) run() (string, error) {
	p.t.Helper()
	config := filepath.Join(p.dir, "as2gate.yaml")
	if err := os.WriteFile(config, []byte(p.config(p.as2, p.admin)), 0o600); err != nil {
		p.t.Fatal(err)
	}
	p.starts++
	logPath := filepath.Join(p.dir, fmt.Sprintf("run-%d.log", p.starts))
	logFile, err := os.Create(logPath)
	if err != nil {
		p.t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(p.bin, "serve", "--config", config)
	cmd.Dir = p.dir
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("%s: starting %s: %v", p.name, p.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	p.cmd, p.exited = cmd, exited
	p.t.Cleanup(p.kill)

	deadline := time.Now().Add(30 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-exited:
			b, _ := os.ReadFile(logPath)
			return string(b), fmt.Errorf("exited at start: %v", cmd.ProcessState)
		default:
		}
		if resp, err := client.Get("http://" + p.admin + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return "", nil
			}
		}
		if time.Now().After(deadline) {
			p.kill()
			b, _ := os.ReadFile(logPath)
			return string(b), errors.New("/healthz did not answer within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL to the gateway's process group and waits until the process is gone.
// It does nothing when the gateway is not running.
func (p *gatewayProcess) kill() {
	if p.cmd == nil {
		return
	}
	select {
	case <-p.exited:
	default:
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
	p.cmd = nil
}

// logs returns everything the gateway wrote over all its runs, for a failure message.
func (p *gatewayProcess) logs() string {
	var b strings.Builder
	for i := 1; i <= p.starts; i++ {
		out, _ := os.ReadFile(filepath.Join(p.dir, fmt.Sprintf("run-%d.log", i)))
		fmt.Fprintf(&b, "--- %s run %d ---\n%s", p.name, i, out)
	}
	return b.String()
}

// call makes an API request and decodes a JSON answer into out; it returns the HTTP status.
func (p *gatewayProcess) call(method, path string, body io.Reader, contentType string, out any) (int, error) {
	req, err := http.NewRequest(method, "http://"+p.admin+path, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+p.token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %w in %s", method, path, err, b)
		}
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	return resp.StatusCode, nil
}

// send submits one file to partner through the API, as `as2gate send` does. It may be called
// from several goroutines.
func (p *gatewayProcess) send(partner, name string, content []byte) (submitted, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("partner", partner)
	w, _ := mw.CreateFormFile("file", name)
	w.Write(content)
	mw.Close()
	var s submitted
	if _, err := p.call("POST", "/api/v1/messages", &buf, mw.FormDataContentType(), &s); err != nil {
		return s, fmt.Errorf("%s: submitting %s: %w", p.name, name, err)
	}
	return s, nil
}

// box lists up to 500 messages of a mailbox, newest first.
func (p *gatewayProcess) box(name string) []messageView {
	p.t.Helper()
	var list struct{ Messages []messageView }
	if _, err := p.call("GET", "/api/v1/messages?limit=500&box="+name, nil, "", &list); err != nil {
		p.t.Fatalf("%s: %v", p.name, err)
	}
	return list.Messages
}

// listAll pages through a mailbox of a node's API.
func listAll(t *testing.T, p *gatewayProcess, box string) []messageView {
	t.Helper()
	var all []messageView
	before := int64(0)
	for {
		var page struct {
			Messages   []messageView `json:"messages"`
			NextBefore int64         `json:"next_before"`
		}
		path := "/api/v1/messages?limit=500&box=" + box
		if before > 0 {
			path += fmt.Sprintf("&before=%d", before)
		}
		if _, err := p.call("GET", path, nil, "", &page); err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
		all = append(all, page.Messages...)
		if page.NextBefore == 0 || len(page.Messages) == 0 {
			return all
		}
		before = page.NextBefore
	}
}
