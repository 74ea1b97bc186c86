package harness

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func init() {
	installHints["prometheus"] = "apt-get install -y prometheus"
	installHints["promtool"] = "apt-get install -y prometheus"
	installHints["prometheus-node-exporter"] = "apt-get install -y prometheus-node-exporter"
	installHints["chromium"] = "apt-get install -y chromium"
}

// Server is a Debian monitoring daemon started for a test on a loopback
// port, stopped when the test ends.
type Server struct {
	URL     string // http://127.0.0.1:PORT
	LogPath string
}

// startServer runs name with args (in which "{port}" is not used: the
// caller passes the address) and waits until path answers 200.
func startServer(t testing.TB, name string, port int, readyPath string, args ...string) *Server {
	t.Helper()
	bin := Tool(t, name)
	dir := t.TempDir()
	s := &Server{URL: "http://127.0.0.1:" + strconv.Itoa(port), LogPath: filepath.Join(dir, name+".log")}
	logf, err := os.Create(s.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	logf.Close()
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	client := &http.Client{Timeout: 2 * time.Second}
	ready := func() error {
		resp, err := client.Get(s.URL + readyPath)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: HTTP %d", readyPath, resp.StatusCode)
		}
		return nil
	}
	died := func() error {
		select {
		case <-exited:
			return fmt.Errorf("%s exited", name)
		default:
			return nil
		}
	}
	if err := waitFor(60*time.Second, ready, died); err != nil {
		t.Fatalf("%s not ready: %v\nlog tail:\n%s", name, err, logTail(s.LogPath, 3000))
	}
	return s
}

// StartNodeExporter serves dir through Debian's node_exporter with only the
// textfile collector, as a NixOS host's prometheus-node-exporter does with
// enabledCollectors = [ "textfile" ].
func StartNodeExporter(t testing.TB, dir string) *Server {
	t.Helper()
	port := FreePort(t)
	return startServer(t, "prometheus-node-exporter", port, "/metrics",
		"--web.listen-address=127.0.0.1:"+strconv.Itoa(port),
		"--collector.disable-defaults", "--collector.textfile",
		"--collector.textfile.directory="+dir)
}

// StartPrometheus runs Debian's Prometheus scraping target (host:port)
// every second, evaluating the rule files every second too.
func StartPrometheus(t testing.TB, target string, ruleFiles ...string) *Server {
	t.Helper()
	dir := t.TempDir()
	conf := "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n"
	for _, f := range ruleFiles {
		conf += fmt.Sprintf("  - %q\n", f)
	}
	conf += fmt.Sprintf("scrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: [%q]\n", target)
	path := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	port := FreePort(t)
	return startServer(t, "prometheus", port, "/-/ready",
		"--config.file="+path, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:"+strconv.Itoa(port))
}

// Sample is one series of a query result.
type Sample struct {
	Labels map[string]string
	Value  string
}

// Query runs an instant PromQL query against a Prometheus server.
func (s *Server) Query(t testing.TB, q string) []Sample {
	t.Helper()
	var out struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	s.getJSON(t, "/api/v1/query?query="+url.QueryEscape(q), &out)
	if out.Status != "success" {
		t.Fatalf("query %s: %s", q, out.Error)
	}
	var res []Sample
	for _, r := range out.Data.Result {
		res = append(res, Sample{Labels: r.Metric, Value: fmt.Sprint(r.Value[1])})
	}
	return res
}

// Alert is one active (pending or firing) alert.
type Alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
}

// Alerts lists the server's active alerts.
func (s *Server) Alerts(t testing.TB) []Alert {
	t.Helper()
	var out struct {
		Data struct {
			Alerts []Alert `json:"alerts"`
		} `json:"data"`
	}
	s.getJSON(t, "/api/v1/alerts", &out)
	return out.Data.Alerts
}

// RuleHealth maps each loaded rule's name to its health ("ok", "err",
// "unknown") and last error.
func (s *Server) RuleHealth(t testing.TB) map[string]string {
	t.Helper()
	var out struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name      string `json:"name"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	s.getJSON(t, "/api/v1/rules", &out)
	h := map[string]string{}
	for _, g := range out.Data.Groups {
		for _, r := range g.Rules {
			h[r.Name] = r.Health + r.LastError
		}
	}
	return h
}

func (s *Server) getJSON(t testing.TB, path string, v any) {
	t.Helper()
	resp, err := http.Get(s.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// Get fetches a page of the server (node_exporter's /metrics).
func (s *Server) Get(t testing.TB, path string) string {
	t.Helper()
	resp, err := http.Get(s.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return string(b)
}
