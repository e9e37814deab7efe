package main_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// yamlDocs parses every document of a YAML file.
func yamlDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []map[string]any
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		docs = append(docs, d)
	}
}

func get(m any, path ...string) any {
	for _, p := range path {
		mm, ok := m.(map[string]any)
		if !ok {
			return nil
		}
		m = mm[p]
	}
	return m
}

// checkWorkerArgs runs vog with a manifest's arguments: they must parse, so
// the only complaint left is the missing server.
func checkWorkerArgs(t *testing.T, where string, args []string) {
	t.Helper()
	r := runVog(t, append(args, "--temporal=")...)
	if !strings.Contains(r.stderr, "--temporal: missing") {
		t.Errorf("%s: vog %v: %s", where, args, r.stderr)
	}
}

// TestKubernetesManifests parses every manifest and checks what vog relies
// on: kinds and names, worker arguments that vog accepts, configuration
// from the ConfigMap and Secret, and GPUs for gradient workers.
func TestKubernetesManifests(t *testing.T) {
	files, _ := filepath.Glob("../../deploy/k8s/*.yaml")
	if len(files) == 0 {
		t.Fatal("no manifests")
	}
	kinds := map[string]int{}
	for _, f := range files {
		for _, d := range yamlDocs(t, f) {
			kind, _ := d["kind"].(string)
			if d["apiVersion"] == nil || kind == "" || get(d, "metadata", "name") == nil {
				t.Fatalf("%s: a document without apiVersion, kind or metadata.name", f)
			}
			kinds[kind]++
			if kind != "Deployment" {
				continue
			}
			containers, _ := get(d, "spec", "template", "spec", "containers").([]any)
			if len(containers) == 0 {
				t.Fatalf("%s: no containers", f)
			}
			for _, c := range containers {
				var args []string
				for _, a := range get(c, "args").([]any) {
					args = append(args, a.(string))
				}
				checkWorkerArgs(t, f, args)
				if !strings.Contains(get(c, "image").(string), "vog:") {
					t.Errorf("%s: image %v", f, get(c, "image"))
				}
				if len(get(c, "envFrom").([]any)) != 2 {
					t.Errorf("%s: configuration should come from the vog ConfigMap and Secret", f)
				}
				gpus := get(c, "resources", "limits", "nvidia.com/gpu")
				if slicesContains(args, "gradient") != (gpus != nil) {
					t.Errorf("%s: gradient workers, and only they, request nvidia.com/gpu (got %v)", f, gpus)
				}
			}
		}
	}
	if kinds["Deployment"] != 2 || kinds["ConfigMap"] != 1 || kinds["Secret"] != 1 || kinds["Namespace"] != 1 {
		t.Fatalf("kinds %v", kinds)
	}
}

func slicesContains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// TestComposeAndDockerfiles parses the compose file and the Dockerfiles:
// services build from Dockerfiles that exist, worker commands parse, and
// every COPY source of the Dockerfiles exists in the repository.
func TestComposeAndDockerfiles(t *testing.T) {
	docs := yamlDocs(t, "../../deploy/compose.yaml")
	services, _ := get(docs[0], "services").(map[string]any)
	if services["temporal"] == nil || services["minio"] == nil {
		t.Fatalf("services %v", services)
	}
	for name, s := range services {
		if df := get(s, "build", "dockerfile"); df != nil {
			if _, err := os.Stat(filepath.Join("../..", df.(string))); err != nil {
				t.Errorf("service %s: %v", name, err)
			}
			var args []string
			for _, a := range get(s, "command").([]any) {
				args = append(args, a.(string))
			}
			checkWorkerArgs(t, "compose service "+name, args)
		}
	}
	dockerfiles, _ := filepath.Glob("../../deploy/docker/Dockerfile*")
	if len(dockerfiles) != 2 {
		t.Fatalf("Dockerfiles %v", dockerfiles)
	}
	known := map[string]bool{"FROM": true, "RUN": true, "COPY": true, "WORKDIR": true, "ENV": true, "ENTRYPOINT": true, "CMD": true}
	for _, f := range dockerfiles {
		data, _ := os.ReadFile(f)
		sc := bufio.NewScanner(bytes.NewReader(data))
		froms := 0
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			fields := strings.Fields(line)
			if !known[fields[0]] {
				t.Errorf("%s: unknown instruction %q", f, fields[0])
			}
			if fields[0] == "FROM" {
				froms++
			}
			if fields[0] == "COPY" && !strings.HasPrefix(fields[1], "--from") {
				for _, src := range fields[1 : len(fields)-1] {
					if _, err := os.Stat(filepath.Join("../..", src)); err != nil {
						t.Errorf("%s: COPY %s: %v", f, src, err)
					}
				}
			}
		}
		if froms == 0 {
			t.Errorf("%s: no FROM", f)
		}
	}
}

// TestTemporalTLSFlags: mTLS needs both halves, and a missing key file is
// named.
func TestTemporalTLSFlags(t *testing.T) {
	r := runVog(t, "status", "--temporal", "127.0.0.1:1", "--tls-cert", "cert.pem", "JOB")
	if !strings.Contains(r.stderr, "--tls-cert and --tls-key: give both or neither") {
		t.Fatalf("%s", r.stderr)
	}
	r = runVog(t, "status", "--temporal", "127.0.0.1:1", "--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem", "JOB")
	if !strings.Contains(r.stderr, "/nonexistent/cert.pem") {
		t.Fatalf("%s", r.stderr)
	}
}
