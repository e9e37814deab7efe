package main_test

import (
	"bufio"
	"bytes"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	kustomize "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

const k8sDir = "../../deploy/k8s"

// strictObject decodes one Kubernetes object into its API type, refusing
// unknown and duplicate fields, as the API server's strict field
// validation does: a typo in a manifest fails here, not on a cluster.
func strictObject(t *testing.T, where string, doc []byte) any {
	t.Helper()
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	var obj any
	switch meta.APIVersion + " " + meta.Kind {
	case "v1 Namespace":
		obj = &corev1.Namespace{}
	case "v1 ServiceAccount":
		obj = &corev1.ServiceAccount{}
	case "v1 ConfigMap":
		obj = &corev1.ConfigMap{}
	case "v1 Secret":
		t.Fatalf("%s: a Secret in the manifests overwrites the one the docs have users create", where)
	case "v1 Service":
		obj = &corev1.Service{}
	case "apps/v1 Deployment":
		obj = &appsv1.Deployment{}
	case "apps/v1 StatefulSet":
		obj = &appsv1.StatefulSet{}
	case "kustomize.config.k8s.io/v1beta1 Kustomization":
		obj = &kustomize.Kustomization{}
	default:
		t.Fatalf("%s: %s %s: a kind this test does not know; add its API type", where, meta.APIVersion, meta.Kind)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		t.Fatalf("%s: %s: %v", where, meta.Kind, err)
	}
	return obj
}

// splitDocs splits a YAML file into its documents.
func splitDocs(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range bytes.Split(data, []byte("\n---\n")) {
		if len(bytes.TrimSpace(stripComments(d))) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}

func stripComments(d []byte) []byte {
	var out []byte
	for _, line := range bytes.Split(d, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out = append(append(out, line...), '\n')
		}
	}
	return out
}

// k8sFS copies deploy/k8s into an in-memory file system for kustomize,
// with overlays/small: the example overlay with the line docs/deploy.md
// tells small clusters to uncomment.
func k8sFS(t *testing.T) filesys.FileSystem {
	t.Helper()
	mem := filesys.MakeFsInMemory()
	err := filepath.WalkDir(k8sDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(k8sDir, path)
		return mem.WriteFile(filepath.Join("/k8s", rel), data)
	})
	if err != nil {
		t.Fatal(err)
	}
	example, _ := mem.ReadFile("/k8s/overlays/example/kustomization.yaml")
	small := strings.Replace(string(example), "# - ../../temporal", "- ../../temporal", 1)
	if small == string(example) {
		t.Fatal("overlays/example has no '# - ../../temporal' line to uncomment")
	}
	if err := mem.WriteFile("/k8s/overlays/small/kustomization.yaml", []byte(small)); err != nil {
		t.Fatal(err)
	}
	return mem
}

// TestKubernetesManifests decodes every manifest strictly into the
// Kubernetes API types, then renders the overlays as kubectl apply -k does
// (kustomize's own library) and checks the rendered objects: strict types
// again, images from the overlay's registry, worker arguments that vog
// accepts, the ServiceAccount for cloud identity, GPUs, node selection and
// tolerations for gradient workers, credentials from an optional Secret the
// manifests never overwrite, and a Temporal address the small-cluster
// server answers to.
func TestKubernetesManifests(t *testing.T) {
	var sources int
	err := filepath.WalkDir(k8sDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".yaml" || strings.HasSuffix(path, "temporal-values.yaml") {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, doc := range splitDocs(data) {
			strictObject(t, path, doc)
			sources++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The Helm values are the chart's, not an API type: they must parse.
	var values map[string]any
	data, err := os.ReadFile(filepath.Join(k8sDir, "temporal-values.yaml"))
	if err != nil || yaml.UnmarshalStrict(data, &values) != nil || values["server"] == nil {
		t.Fatalf("temporal-values.yaml: %v", err)
	}

	mem := k8sFS(t)
	for _, overlay := range []string{"example", "small"} {
		t.Run(overlay, func(t *testing.T) {
			res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(mem, "/k8s/overlays/"+overlay)
			if err != nil {
				t.Fatal(err)
			}
			kinds := map[string]int{}
			var address string
			services := map[string]*corev1.Service{}
			for _, r := range res.Resources() {
				doc, err := r.AsYAML()
				if err != nil {
					t.Fatal(err)
				}
				where := overlay + ": " + r.GetKind() + " " + r.GetName()
				kinds[r.GetKind()]++
				switch o := strictObject(t, where, doc).(type) {
				case *corev1.ConfigMap:
					address = o.Data["TEMPORAL_ADDRESS"]
				case *corev1.Service:
					services[o.Name+"."+o.Namespace] = o
				case *appsv1.Deployment:
					if o.Namespace != "vog" {
						t.Errorf("%s: namespace %q", where, o.Namespace)
					}
					checkPod(t, where, o.Spec.Template.Spec)
				case *appsv1.StatefulSet:
					checkPod(t, where, o.Spec.Template.Spec)
					if len(o.Spec.VolumeClaimTemplates) == 0 {
						t.Errorf("%s: the server's state needs a volume", where)
					}
				}
			}
			want := map[string]int{"Namespace": 1, "ServiceAccount": 1, "ConfigMap": 1, "Deployment": 2}
			if overlay == "small" {
				want = map[string]int{"Namespace": 2, "ServiceAccount": 1, "ConfigMap": 1, "Deployment": 2, "StatefulSet": 1, "Service": 2}
			}
			if !equalCounts(kinds, want) {
				t.Fatalf("kinds %v, want %v", kinds, want)
			}
			if overlay == "small" {
				// The address the workers are given is the server's Service.
				host, port, _ := strings.Cut(address, ":")
				svc := services[strings.TrimSuffix(host, ".svc.cluster.local")]
				if svc == nil || len(svc.Spec.Ports) == 0 || svc.Spec.Ports[0].Port != 7233 || port != "7233" {
					t.Fatalf("TEMPORAL_ADDRESS %s is no Service of the small-cluster server (%v)", address, slices.Collect(maps.Keys(services)))
				}
			}
		})
	}
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// checkPod checks a rendered pod template of vog's image.
func checkPod(t *testing.T, where string, pod corev1.PodSpec) {
	t.Helper()
	for _, c := range pod.Containers {
		if !strings.HasPrefix(c.Image, "registry.example.com/ml/vog:") {
			t.Errorf("%s: image %q: not the overlay's registry", where, c.Image)
		}
		if c.Args[0] == "server" {
			checkServerArgs(t, where, c.Args)
			continue
		}
		checkWorkerArgs(t, where, c.Args)
		if pod.ServiceAccountName != "vog" {
			t.Errorf("%s: serviceAccountName %q, want vog (cloud identity)", where, pod.ServiceAccountName)
		}
		var secret bool
		for _, e := range c.EnvFrom {
			if e.SecretRef != nil {
				secret = e.SecretRef.Name == "vog" && e.SecretRef.Optional != nil && *e.SecretRef.Optional
			}
		}
		if !secret {
			t.Errorf("%s: credentials should come from the optional Secret vog", where)
		}
		gpus := c.Resources.Limits["nvidia.com/gpu"]
		gradient := slices.Contains(c.Args, "gradient")
		if gradient != !gpus.IsZero() {
			t.Errorf("%s: gradient workers, and only they, ask for nvidia.com/gpu (got %v)", where, gpus.String())
		}
		if gradient && (len(pod.NodeSelector) == 0 || !slices.ContainsFunc(pod.Tolerations, func(tol corev1.Toleration) bool {
			return tol.Key == "nvidia.com/gpu"
		})) {
			t.Errorf("%s: GPU workers need a node selector and the nvidia.com/gpu toleration", where)
		}
	}
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

// checkServerArgs runs vog server with a manifest's arguments and a port
// it refuses: the arguments must parse, so the port is the only complaint.
func checkServerArgs(t *testing.T, where string, args []string) {
	t.Helper()
	r := runVog(t, append(args, "--port", "-1")...)
	if r.err == nil || !strings.Contains(r.stderr, "--port") || strings.Contains(r.stderr, "not defined") {
		t.Errorf("%s: vog %v: %v %s", where, args, r.err, r.stderr)
	}
}

// TestDockerfiles checks the Dockerfiles where no container engine runs:
// Debian base images only (what builds where no other registry is
// reachable), known instructions, COPY sources that exist.
// TestContainerCluster builds and runs them.
func TestDockerfiles(t *testing.T) {
	dockerfiles, _ := filepath.Glob("../../deploy/docker/Dockerfile*")
	if len(dockerfiles) != 3 {
		t.Fatalf("Dockerfiles %v", dockerfiles)
	}
	known := map[string]bool{"FROM": true, "RUN": true, "COPY": true, "WORKDIR": true, "ENV": true, "ARG": true, "ENTRYPOINT": true, "CMD": true}
	for _, f := range dockerfiles {
		data, _ := os.ReadFile(f)
		sc := bufio.NewScanner(bytes.NewReader(data))
		froms, continued := 0, false
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			wasContinued := continued
			continued = strings.HasSuffix(line, "\\")
			if line == "" || strings.HasPrefix(line, "#") || wasContinued {
				continue
			}
			fields := strings.Fields(line)
			if !known[fields[0]] {
				t.Errorf("%s: unknown instruction %q", f, fields[0])
			}
			if fields[0] == "FROM" {
				froms++
				if !strings.HasSuffix(f, ".cuda") && !strings.HasPrefix(fields[1], "debian:bookworm") {
					t.Errorf("%s: FROM %s: only Debian's images build here", f, fields[1])
				}
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

// TestDeployDocPaths: every file or folder of the repository that
// docs/deploy.md names exists (the overlay users make, overlays/mine,
// aside), so that its steps can be followed as written.
func TestDeployDocPaths(t *testing.T) {
	doc, err := os.ReadFile("../../docs/deploy.md")
	if err != nil {
		t.Fatal(err)
	}
	paths := regexp.MustCompile(`(?:deploy|scripts|engine)/[A-Za-z0-9_./-]*[A-Za-z0-9_]`).FindAllString(string(doc), -1)
	if len(paths) < 10 {
		t.Fatalf("only %d paths found in docs/deploy.md", len(paths))
	}
	for _, p := range paths {
		if strings.HasPrefix(p, "deploy/k8s/overlays/mine") {
			continue
		}
		if _, err := os.Stat(filepath.Join("../..", p)); err != nil {
			t.Errorf("docs/deploy.md names %s: %v", p, err)
		}
	}
}
