// Package deploy_test checks that the Kubernetes manifests, the alerts, the Grafana
// dashboard and the Dockerfile agree with the binary: the probe paths and the port
// it serves, the config and rule files it loads, the secret files it reads and the
// metrics it exports. kustomize is not needed: the kustomization tree is read
// directly, which is all the checks need (no patches are used).
package deploy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/rulesd/rulesd/internal/app"
	"github.com/rulesd/rulesd/internal/config"
	"github.com/rulesd/rulesd/internal/rules"
)

// Paths relative to this directory (go test runs in it).
const (
	rootKustomization = "kustomization.yaml"
	secretExample     = "secret.example.yaml"
	dashboardFile     = "grafana/rulesd-dashboard.json"
	exampleRules      = "../rules/*.yaml"
	operationsDoc     = "../docs/operations.md"
	dockerfile        = "../Dockerfile"
)

// The names the manifests use for the objects that tie them together.
const (
	containerName    = "rulesd"
	configMapConfig  = "rulesd-config"
	configMapRules   = "rulesd-rules"
	configMapGrafana = "rulesd-grafana-dashboard"
	secretName       = "rulesd-secrets"
)

// object is the part of a Kubernetes object every check needs; raw keeps the whole
// document for decoding into a kind's own struct.
type object struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	file string
	raw  *yaml.Node
}

type kustomization struct {
	Resources          []string `yaml:"resources"`
	ConfigMapGenerator []struct {
		Name    string   `yaml:"name"`
		Files   []string `yaml:"files"`
		Options struct {
			Labels                map[string]string `yaml:"labels"`
			DisableNameSuffixHash bool              `yaml:"disableNameSuffixHash"`
		} `yaml:"options"`
	} `yaml:"configMapGenerator"`
}

// generator is a configMapGenerator with its files resolved against its
// kustomization's directory; keys are the files' base names, as kustomize makes them.
type generator struct {
	name          string
	files         []string
	labels        map[string]string
	disableSuffix bool
}

// tree is everything deploy/kustomization.yaml includes.
type tree struct {
	objects        []object
	generators     map[string]generator
	kustomizations []string // paths of the kustomization files read
}

// loadTree reads deploy/kustomization.yaml and, recursively, the ones it includes.
func loadTree(t *testing.T) *tree {
	t.Helper()
	tr := &tree{generators: map[string]generator{}}
	tr.load(t, ".")
	return tr
}

func (tr *tree) load(t *testing.T, dir string) {
	t.Helper()
	file := filepath.Join(dir, rootKustomization)
	tr.kustomizations = append(tr.kustomizations, file)
	var k kustomization
	decodeFile(t, file, &k)
	for _, r := range k.Resources {
		p := filepath.Join(dir, r)
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s: resource %s: %v", file, r, err)
		}
		if fi.IsDir() {
			tr.load(t, p)
			continue
		}
		tr.objects = append(tr.objects, readObjects(t, p)...)
	}
	for _, g := range k.ConfigMapGenerator {
		if _, dup := tr.generators[g.Name]; dup {
			t.Fatalf("%s: ConfigMap %s is generated twice", file, g.Name)
		}
		gen := generator{name: g.Name, labels: g.Options.Labels, disableSuffix: g.Options.DisableNameSuffixHash}
		for _, f := range g.Files {
			if strings.Contains(f, "=") {
				t.Fatalf("%s: generator %s: keys other than the file name (%q) are not expected", file, g.Name, f)
			}
			gen.files = append(gen.files, filepath.Join(dir, f))
		}
		tr.generators[g.Name] = gen
	}
}

// one returns the only object of a kind and name.
func (tr *tree) one(t *testing.T, kind, name string) object {
	t.Helper()
	var found []object
	for _, o := range tr.objects {
		if o.Kind == kind && o.Metadata.Name == name {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want exactly one %s %s in the kustomization, found %d", kind, name, len(found))
	}
	return found[0]
}

// generated returns a generator's file of the given key (base name).
func (tr *tree) generated(t *testing.T, name, key string) string {
	t.Helper()
	g, ok := tr.generators[name]
	if !ok {
		t.Fatalf("no configMapGenerator %s", name)
	}
	for _, f := range g.files {
		if filepath.Base(f) == key {
			return f
		}
	}
	t.Fatalf("configMapGenerator %s has no key %s (files %v)", name, key, g.files)
	return ""
}

func decodeFile(t *testing.T, file string, v any) {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(src, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// readObjects parses every document of a YAML file.
func readObjects(t *testing.T, file string) []object {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var out []object
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if len(n.Content) == 0 || n.Content[0].Kind != yaml.MappingNode {
			continue // an empty document
		}
		o := object{file: file, raw: &n}
		if err := n.Decode(&o); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
			t.Fatalf("%s: a document without apiVersion, kind or metadata.name", file)
		}
		out = append(out, o)
	}
	return out
}

func (o object) decode(t *testing.T, v any) {
	t.Helper()
	if err := o.raw.Decode(v); err != nil {
		t.Fatalf("%s: %s %s: %v", o.file, o.Kind, o.Metadata.Name, err)
	}
}

// The parts of the workload objects that are checked.

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"` // a name or a number
	} `yaml:"httpGet"`
}

type container struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name      string `yaml:"name"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	LivenessProbe   *probe `yaml:"livenessProbe"`
	ReadinessProbe  *probe `yaml:"readinessProbe"`
	SecurityContext struct {
		RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
	} `yaml:"volumeMounts"`
}

type volume struct {
	Name      string `yaml:"name"`
	ConfigMap *struct {
		Name string `yaml:"name"`
	} `yaml:"configMap"`
	Secret *struct {
		SecretName string `yaml:"secretName"`
	} `yaml:"secret"`
	PersistentVolumeClaim *struct {
		ClaimName string `yaml:"claimName"`
	} `yaml:"persistentVolumeClaim"`
	EmptyDir map[string]any `yaml:"emptyDir"`
}

type deployment struct {
	Spec struct {
		Replicas int `yaml:"replicas"`
		Strategy struct {
			Type string `yaml:"type"`
		} `yaml:"strategy"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				SecurityContext struct {
					RunAsNonRoot   *bool          `yaml:"runAsNonRoot"`
					RunAsUser      *int           `yaml:"runAsUser"`
					FSGroup        *int           `yaml:"fsGroup"`
					SeccompProfile map[string]any `yaml:"seccompProfile"`
				} `yaml:"securityContext"`
				TerminationGracePeriodSeconds int         `yaml:"terminationGracePeriodSeconds"`
				Containers                    []container `yaml:"containers"`
				Volumes                       []volume    `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

// workload is the Deployment with what the checks derive from it.
type workload struct {
	dep  deployment
	c    container
	port int // the container port named http
}

func loadWorkload(t *testing.T, tr *tree) workload {
	t.Helper()
	var w workload
	tr.one(t, "Deployment", "rulesd").decode(t, &w.dep)
	cs := w.dep.Spec.Template.Spec.Containers
	i := slices.IndexFunc(cs, func(c container) bool { return c.Name == containerName })
	if i < 0 {
		t.Fatalf("the Deployment has no container %s", containerName)
	}
	w.c = cs[i]
	for _, p := range w.c.Ports {
		if p.Name == "http" {
			w.port = p.ContainerPort
		}
	}
	if w.port == 0 {
		t.Fatal("the rulesd container has no port named http")
	}
	return w
}

// flag returns the value of --name in the container's args.
func (w workload) flag(t *testing.T, name string) string {
	t.Helper()
	for i, a := range w.c.Args {
		if a == "--"+name && i+1 < len(w.c.Args) {
			return w.c.Args[i+1]
		}
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
	}
	t.Fatalf("the rulesd container's args %q have no --%s", w.c.Args, name)
	return ""
}

// mountOf returns the mount path and volume of the mount at path or the nearest
// directory above it, with the mount's subPath.
func (w workload) mountOf(p string) (mountPath, subPath string, v volume, ok bool) {
	best := ""
	for _, m := range w.c.VolumeMounts {
		if (p == m.MountPath || strings.HasPrefix(p, m.MountPath+"/")) && len(m.MountPath) > len(best) {
			best, subPath = m.MountPath, m.SubPath
			for _, vol := range w.dep.Spec.Template.Spec.Volumes {
				if vol.Name == m.Name {
					v = vol
				}
			}
		}
	}
	return best, subPath, v, best != ""
}

// resolvePort turns a probe's or Service's port (a name or a number) into a number.
func (w workload) resolvePort(t *testing.T, port string) int {
	t.Helper()
	if n, err := strconv.Atoi(port); err == nil {
		return n
	}
	for _, p := range w.c.Ports {
		if p.Name == port {
			return p.ContainerPort
		}
	}
	t.Fatalf("port %q is not a port of the rulesd container", port)
	return 0
}

// deployedConfig parses the config ConfigMap's rulesd.yaml under the path the
// container reads it from, as rulesd will.
func deployedConfig(t *testing.T, tr *tree, w workload) (*config.Config, string) {
	t.Helper()
	cfgPath := w.flag(t, "config")
	file := tr.generated(t, configMapConfig, path.Base(cfgPath))
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cfg, diags := config.Parse(cfgPath, src)
	if cfg == nil {
		t.Fatalf("%s does not pass config.Parse: %v", file, diags.Err())
	}
	for _, d := range diags {
		t.Logf("%s: %s", file, d)
	}
	return cfg, cfgPath
}

func TestProbesAndPortMatchTheServer(t *testing.T) {
	tr := loadTree(t)
	w := loadWorkload(t, tr)
	cfg, _ := deployedConfig(t, tr, w)

	_, listenPort, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		t.Fatalf("config listen %q: %v", cfg.Listen, err)
	}
	if strconv.Itoa(w.port) != listenPort {
		t.Errorf("container port http is %d, the config listens on %q", w.port, cfg.Listen)
	}
	if w.port != 8080 {
		t.Errorf("container port http is %d, want 8080", w.port)
	}

	for _, p := range []struct {
		what  string
		probe *probe
		path  string
	}{
		{"livenessProbe", w.c.LivenessProbe, "/healthz"},
		{"readinessProbe", w.c.ReadinessProbe, "/readyz"},
	} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: want an httpGet probe", p.what)
			continue
		}
		if p.probe.HTTPGet.Path != p.path {
			t.Errorf("%s path is %q, want %q", p.what, p.probe.HTTPGet.Path, p.path)
		}
		if p.probe.HTTPGet.Port != "http" {
			t.Errorf("%s port is %q, want the container port named http", p.what, p.probe.HTTPGet.Port)
		}
		if got := w.resolvePort(t, p.probe.HTTPGet.Port); got != w.port {
			t.Errorf("%s port is %d, the server listens on %d", p.what, got, w.port)
		}
	}

	type servicePort struct {
		Name       string `yaml:"name"`
		Port       int    `yaml:"port"`
		TargetPort string `yaml:"targetPort"` // a name or a number
	}
	var svc struct {
		Spec struct {
			Selector map[string]string `yaml:"selector"`
			Ports    []servicePort     `yaml:"ports"`
		} `yaml:"spec"`
	}
	svcObj := tr.one(t, "Service", "rulesd")
	svcObj.decode(t, &svc)
	if !selects(svc.Spec.Selector, w.dep.Spec.Template.Metadata.Labels) {
		t.Errorf("the Service's selector %v does not select the pod labels %v", svc.Spec.Selector, w.dep.Spec.Template.Metadata.Labels)
	}
	i := slices.IndexFunc(svc.Spec.Ports, func(p servicePort) bool { return p.Name == "http" })
	if i < 0 {
		t.Fatal("the Service has no port named http")
	}
	if p := svc.Spec.Ports[i]; w.resolvePort(t, p.TargetPort) != w.port || p.Port != w.port {
		t.Errorf("Service port http is %d -> %s, want %d -> the container's %d", p.Port, p.TargetPort, w.port, w.port)
	}

	var sm struct {
		Spec struct {
			Selector struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
			Endpoints []struct {
				Port     string `yaml:"port"`
				Path     string `yaml:"path"`
				Interval string `yaml:"interval"`
			} `yaml:"endpoints"`
		} `yaml:"spec"`
	}
	tr.one(t, "ServiceMonitor", "rulesd").decode(t, &sm)
	if !selects(sm.Spec.Selector.MatchLabels, svcObj.Metadata.Labels) {
		t.Errorf("the ServiceMonitor's selector %v does not select the Service's labels %v", sm.Spec.Selector.MatchLabels, svcObj.Metadata.Labels)
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "http" || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor endpoints %+v, want one: port http, path /metrics", sm.Spec.Endpoints)
	}

	var pdb struct {
		Spec struct {
			Selector struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
		} `yaml:"spec"`
	}
	tr.one(t, "PodDisruptionBudget", "rulesd").decode(t, &pdb)
	if !selects(pdb.Spec.Selector.MatchLabels, w.dep.Spec.Template.Metadata.Labels) ||
		!selects(w.dep.Spec.Selector.MatchLabels, w.dep.Spec.Template.Metadata.Labels) {
		t.Error("the Deployment's and the PodDisruptionBudget's selectors must select the pod labels")
	}
}

// selects reports whether a non-empty label selector matches labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func TestPodIsLockedDown(t *testing.T) {
	w := loadWorkload(t, loadTree(t))
	pod := w.dep.Spec.Template.Spec
	sc := w.c.SecurityContext
	isTrue := func(b *bool) bool { return b != nil && *b }
	if !isTrue(pod.SecurityContext.RunAsNonRoot) {
		t.Error("pod securityContext.runAsNonRoot must be true")
	}
	if u := pod.SecurityContext.RunAsUser; u == nil || *u == 0 {
		t.Error("pod securityContext.runAsUser must be set and not 0")
	}
	if pod.SecurityContext.FSGroup == nil {
		t.Error("pod securityContext.fsGroup must be set (the state volume must be writable)")
	}
	if pod.SecurityContext.SeccompProfile["type"] != "RuntimeDefault" {
		t.Error("pod seccompProfile must be RuntimeDefault")
	}
	if !isTrue(sc.ReadOnlyRootFilesystem) {
		t.Error("container readOnlyRootFilesystem must be true")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("container allowPrivilegeEscalation must be false")
	}
	if !slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) {
		t.Errorf("container capabilities.drop is %v, want [ALL]", sc.Capabilities.Drop)
	}
	for _, r := range []string{"cpu", "memory"} {
		if w.c.Resources.Requests[r] == "" || w.c.Resources.Limits[r] == "" {
			t.Errorf("container resources must request and limit %s", r)
		}
	}
	if pod.TerminationGracePeriodSeconds != 30 {
		t.Errorf("terminationGracePeriodSeconds is %d, want 30 (SPEC 7: rulesd exits within it)", pod.TerminationGracePeriodSeconds)
	}
}

// TestMountsMatchTheConfig checks that every path the config names is where the
// Deployment mounts it: the config file, the rules directory (hot-reloadable), the
// SQLite file on the persistent volume, and the secret files in the Secret.
func TestMountsMatchTheConfig(t *testing.T) {
	tr := loadTree(t)
	w := loadWorkload(t, tr)
	cfg, cfgPath := deployedConfig(t, tr, w)

	// The config file: from the config ConfigMap, under the key of its base name.
	mp, sub, v, ok := w.mountOf(cfgPath)
	if !ok || v.ConfigMap == nil || v.ConfigMap.Name != configMapConfig {
		t.Errorf("--config %s is not in a mount of the ConfigMap %s", cfgPath, configMapConfig)
	} else if key := strings.TrimPrefix(strings.TrimPrefix(cfgPath, mp), "/"); path.Join(sub, key) != path.Base(cfgPath) {
		t.Errorf("--config %s is key %q of the ConfigMap %s, want %q", cfgPath, path.Join(sub, key), configMapConfig, path.Base(cfgPath))
	}

	// The rules: a directory mount of the rules ConfigMap, without subPath, so the
	// kubelet's ..data symlink swap reaches the pod and rulesd reloads.
	if len(cfg.RuleFiles) == 0 {
		t.Fatal("the deployed config has no rule_files")
	}
	for _, pattern := range cfg.RuleFiles {
		dir := path.Dir(cfg.Resolve(pattern))
		mp, sub, v, ok := w.mountOf(dir)
		switch {
		case !ok || v.ConfigMap == nil || v.ConfigMap.Name != configMapRules:
			t.Errorf("rule_files %q (%s) is not in a mount of the ConfigMap %s", pattern, dir, configMapRules)
		case mp != dir:
			t.Errorf("rule_files %q: the ConfigMap %s is mounted at %s, want the rules directory %s", pattern, configMapRules, mp, dir)
		case sub != "":
			t.Errorf("the ConfigMap %s is mounted with subPath %q: updates would never reach the pod", configMapRules, sub)
		}
	}
	if g := tr.generators[configMapRules]; !g.disableSuffix {
		t.Errorf("configMapGenerator %s needs options.disableNameSuffixHash: true, so an update changes the mounted ConfigMap in place (hot reload) instead of creating a new one", configMapRules)
	}

	// No mount inside a ConfigMap or Secret volume: those are read-only, and the
	// runtime cannot create a mount point in them.
	for _, m := range w.c.VolumeMounts {
		parent := path.Dir(m.MountPath)
		if pm, _, pv, ok := w.mountOf(parent); ok && (pv.ConfigMap != nil || pv.Secret != nil) {
			t.Errorf("%s is mounted inside %s, a read-only %s volume", m.MountPath, pm, pv.Name)
		}
	}

	// SQLite: one writer, a file on the persistent volume.
	if cfg.State.Driver == "" || cfg.State.Driver == "sqlite" {
		if w.dep.Spec.Replicas != 1 || w.dep.Spec.Strategy.Type != "Recreate" {
			t.Errorf("SQLite has one writer: want 1 replica and strategy Recreate, have %d and %q", w.dep.Spec.Replicas, w.dep.Spec.Strategy.Type)
		}
		db := strings.SplitN(cfg.State.DSN, "?", 2)[0]
		if !path.IsAbs(db) {
			t.Errorf("state.dsn %q: want an absolute path on the state volume", cfg.State.DSN)
		} else if _, _, v, ok := w.mountOf(db); !ok || v.PersistentVolumeClaim == nil {
			t.Errorf("state.dsn %s is not on a PersistentVolumeClaim: the state would not survive a restart", db)
		} else {
			tr.one(t, "PersistentVolumeClaim", v.PersistentVolumeClaim.ClaimName)
		}
	}

	// Secrets: every file the config names is a key of the Secret, mounted.
	keys := secretExampleKeys(t)
	secretFile := func(what, file string) {
		t.Helper()
		if file == "" {
			return
		}
		mp, sub, v, ok := w.mountOf(file)
		if !ok || v.Secret == nil || v.Secret.SecretName != secretName {
			t.Errorf("%s %s is not in a mount of the Secret %s", what, file, secretName)
			return
		}
		key := path.Join(sub, strings.TrimPrefix(strings.TrimPrefix(file, mp), "/"))
		if !keys[key] {
			t.Errorf("%s %s is key %q of the Secret %s, which %s does not have", what, file, key, secretName, secretExample)
		}
	}
	secretFile("graph.access_token_file", cfg.Graph.AccessTokenFile)
	secretFile("graph.app_secret_file", cfg.Graph.AppSecretFile)
	for _, a := range cfg.Accounts {
		secretFile("access_token_file of "+a.ID, a.AccessTokenFile)
	}
	for _, n := range cfg.Notifiers {
		secretFile("webhook_url_file of notifier "+n.Name.Value, n.WebhookURLFile)
		secretFile("url_file of notifier "+n.Name.Value, n.URLFile)
	}
	for _, e := range w.c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			if ref := e.ValueFrom.SecretKeyRef; ref.Name != secretName || !keys[ref.Key] {
				t.Errorf("env %s reads key %q of Secret %q, which %s does not have", e.Name, ref.Key, ref.Name, secretExample)
			}
		}
	}
}

// secretExampleKeys returns the keys of the Secret template, which must not be part
// of the kustomization (it holds placeholders, not secrets).
func secretExampleKeys(t *testing.T) map[string]bool {
	t.Helper()
	objs := readObjects(t, secretExample)
	if len(objs) != 1 || objs[0].Kind != "Secret" || objs[0].Metadata.Name != secretName {
		t.Fatalf("%s: want one Secret %s", secretExample, secretName)
	}
	var s struct {
		StringData map[string]string `yaml:"stringData"`
	}
	objs[0].decode(t, &s)
	keys := map[string]bool{}
	for k := range s.StringData {
		keys[k] = true
	}
	return keys
}

// TestRulesConfigMapCoversExampleRules checks that the rules ConfigMap is generated
// from exactly the example rule files, and that the deployed config loads them as
// mounted in the container.
func TestRulesConfigMapCoversExampleRules(t *testing.T) {
	tr := loadTree(t)
	want, err := filepath.Glob(exampleRules)
	if err != nil || len(want) == 0 {
		t.Fatalf("no example rules at %s: %v", exampleRules, err)
	}
	g, ok := tr.generators[configMapRules]
	if !ok {
		t.Fatalf("no configMapGenerator %s", configMapRules)
	}
	got := slices.Clone(g.files)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("configMapGenerator %s lists\n  %v\nwant the example rules\n  %v", configMapRules, got, want)
	}

	// Lay the files out as the container sees them, then load as rulesd does.
	w := loadWorkload(t, tr)
	cfg, cfgPath := deployedConfig(t, tr, w)
	root := t.TempDir()
	write := func(p, from string) {
		t.Helper()
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(cfgPath, tr.generated(t, configMapConfig, path.Base(cfgPath)))
	rulesDir := path.Dir(cfg.Resolve(cfg.RuleFiles[0]))
	for _, f := range g.files {
		write(path.Join(rulesDir, filepath.Base(f)), f)
	}
	local, diags := config.Load(filepath.Join(root, filepath.FromSlash(cfgPath)))
	if local == nil {
		t.Fatalf("config: %v", diags.Err())
	}
	paths, err := local.RuleFilePaths()
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != len(g.files) {
		t.Errorf("rule_files %q find %d files in the mounted ConfigMap, want all %d", cfg.RuleFiles, len(paths), len(g.files))
	}
	if _, diags := rules.LoadFiles(paths, rules.Options{Config: local}); diags.HasErrors() {
		t.Errorf("the example rules do not load with the deployed config:\n%v", diags.Err())
	}
}

// TestEveryManifestIsIncluded catches a manifest that is written but never applied,
// and a Secret with placeholders that would be.
func TestEveryManifestIsIncluded(t *testing.T) {
	tr := loadTree(t)
	used := map[string]bool{secretExample: true}
	for _, k := range tr.kustomizations {
		used[filepath.Clean(k)] = true
	}
	for _, o := range tr.objects {
		used[filepath.Clean(o.file)] = true
		if o.Kind == "Secret" {
			t.Errorf("%s: a Secret is part of the kustomization; secrets are made from %s by hand", o.file, secretExample)
		}
	}
	for _, g := range tr.generators {
		for _, f := range g.files {
			used[filepath.Clean(f)] = true
		}
	}
	err := filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ext := filepath.Ext(p); !d.IsDir() && (ext == ".yaml" || ext == ".yml" || ext == ".json") && !used[p] {
			t.Errorf("%s is not part of the kustomization", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if g := tr.generators[configMapGrafana]; g.labels["grafana_dashboard"] == "" || !slices.Contains(g.files, filepath.Clean(dashboardFile)) {
		t.Errorf("configMapGenerator %s must ship %s with the label grafana_dashboard", configMapGrafana, dashboardFile)
	}
}

// The PrometheusRule, the dashboard and the docs against the binary's metrics.

type promRule struct {
	Record      string            `yaml:"record"`
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func loadPromRules(t *testing.T, tr *tree) []promRule {
	t.Helper()
	var pr struct {
		Spec struct {
			Groups []struct {
				Name  string     `yaml:"name"`
				Rules []promRule `yaml:"rules"`
			} `yaml:"groups"`
		} `yaml:"spec"`
	}
	tr.one(t, "PrometheusRule", "rulesd").decode(t, &pr)
	var out []promRule
	for _, g := range pr.Spec.Groups {
		out = append(out, g.Rules...)
	}
	if len(out) == 0 {
		t.Fatal("the PrometheusRule has no rules")
	}
	return out
}

// dashboardQueries returns every PromQL query of the dashboard: panel targets
// (rows included) and template variables.
func dashboardQueries(t *testing.T) []string {
	t.Helper()
	src, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var d struct {
		UID        string            `json:"uid"`
		Panels     []json.RawMessage `json:"panels"`
		Templating struct {
			List []struct {
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(src, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.UID == "" {
		t.Errorf("%s: the dashboard needs a fixed uid", dashboardFile)
	}
	var out []string
	var walk func([]json.RawMessage)
	walk = func(ps []json.RawMessage) {
		for _, raw := range ps {
			var p panel
			if err := json.Unmarshal(raw, &p); err != nil {
				t.Fatalf("%s: %v", dashboardFile, err)
			}
			for _, tg := range p.Targets {
				if tg.Expr == "" {
					t.Errorf("%s: panel %q has a target without expr", dashboardFile, p.Title)
				}
				out = append(out, tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		var s string
		if json.Unmarshal(v.Query, &s) == nil {
			out = append(out, s)
		} else if json.Unmarshal(v.Query, &q) == nil {
			out = append(out, q.Query)
		}
	}
	return out
}

var (
	metricToken   = regexp.MustCompile(`rulesd_[a-z_]+`)
	recordedToken = regexp.MustCompile(`rulesd:[a-z0-9_:]+`)
)

// metricsIn returns the rulesd metric names a query reads, histogram series by their
// base name.
func metricsIn(expr string, exported map[string]bool) []string {
	var out []string
	for _, m := range metricToken.FindAllString(expr, -1) {
		if !exported[m] {
			for _, suffix := range []string{"_bucket", "_count", "_sum"} {
				if base, ok := strings.CutSuffix(m, suffix); ok && exported[base] {
					m = base
					break
				}
			}
		}
		out = append(out, m)
	}
	return out
}

func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	exported := map[string]bool{}
	for _, n := range app.MetricNames() {
		exported[n] = true
	}
	return exported
}

func TestAlertsAndDashboardUseExportedMetrics(t *testing.T) {
	tr := loadTree(t)
	exported := exportedMetrics(t)
	check := func(where, expr string) int {
		n := 0
		for _, m := range metricsIn(expr, exported) {
			n++
			if !exported[m] {
				t.Errorf("%s uses %s, which rulesd does not export", where, m)
			}
		}
		return n
	}

	recorded := map[string]bool{}
	rs := loadPromRules(t, tr)
	for _, r := range rs {
		if r.Record != "" {
			recorded[r.Record] = true
		}
	}
	used := 0
	for _, r := range rs {
		name := r.Alert + r.Record
		if r.Expr == "" {
			t.Errorf("PrometheusRule %s has no expr", name)
		}
		used += check("PrometheusRule "+name, r.Expr)
		for _, rec := range recordedToken.FindAllString(r.Expr, -1) {
			used++
			if !recorded[rec] {
				t.Errorf("PrometheusRule %s uses %s, which no rule records", name, rec)
			}
		}
	}

	shown := map[string]bool{}
	for _, q := range dashboardQueries(t) {
		used += check("dashboard query "+strconv.Quote(q), q)
		for _, m := range metricsIn(q, exported) {
			shown[m] = true
		}
	}
	if used == 0 {
		t.Fatal("no rulesd metric found in the alerts and the dashboard")
	}
	for m := range exported {
		if strings.HasPrefix(m, "rulesd_") && !shown[m] {
			t.Errorf("the dashboard shows no panel of %s: add one to %s", m, dashboardFile)
		}
	}
}

func TestAlertsAreDocumented(t *testing.T) {
	rs := loadPromRules(t, loadTree(t))
	doc, err := os.ReadFile(operationsDoc)
	if err != nil {
		t.Fatal(err)
	}
	anchors := markdownAnchors(string(doc))
	want := []string{"RulesdDown", "RulesdGroupNotRunning", "RulesdRuleEvaluationErrors", "RulesdActionsFailed",
		"RulesdThrottledSustained", "RulesdReloadFailed", "RulesdBlastRadiusGuardTripped", "RulesdFlappingBlocked",
		"RulesdAuthBroken", "RulesdKillSwitchEngaged"}
	have := map[string]bool{}
	for _, r := range rs {
		if r.Alert == "" {
			continue
		}
		have[r.Alert] = true
		switch r.Labels["severity"] {
		case "critical", "warning", "info":
		default:
			t.Errorf("alert %s: severity %q, want critical, warning or info", r.Alert, r.Labels["severity"])
		}
		for _, a := range []string{"summary", "description", "runbook_url"} {
			if r.Annotations[a] == "" {
				t.Errorf("alert %s has no %s annotation", r.Alert, a)
			}
		}
		docURL, anchor, _ := strings.Cut(r.Annotations["runbook_url"], "#")
		if !strings.HasSuffix(docURL, "/docs/operations.md") || !anchors[anchor] {
			t.Errorf("alert %s: runbook_url %q is not a heading of %s", r.Alert, r.Annotations["runbook_url"], operationsDoc)
		}
	}
	for _, a := range want {
		if !have[a] {
			t.Errorf("the PrometheusRule has no alert %s", a)
		}
	}
}

// markdownAnchors returns the anchors GitHub gives the headings of a Markdown file.
func markdownAnchors(doc string) map[string]bool {
	out := map[string]bool{}
	drop := regexp.MustCompile(`[^\p{L}\p{N}\- _]`)
	for line := range strings.Lines(doc) {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.TrimSpace(strings.TrimLeft(line, "#"))
		out[strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(h), ""), " ", "-")] = true
	}
	return out
}

func TestMetricsAreDocumented(t *testing.T) {
	doc, err := os.ReadFile(operationsDoc)
	if err != nil {
		t.Fatal(err)
	}
	for m := range exportedMetrics(t) {
		if strings.HasPrefix(m, "rulesd_") && !strings.Contains(string(doc), "`"+m+"`") {
			t.Errorf("%s does not describe the metric %s", operationsDoc, m)
		}
	}
}

// TestDockerfileMatchesDeployment checks that the image's defaults are the ones the
// Deployment relies on.
func TestDockerfileMatchesDeployment(t *testing.T) {
	w := loadWorkload(t, loadTree(t))
	src, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	var final, cmd []string
	for line := range strings.Lines(string(src)) {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			final = nil
		case "CMD":
			if err := json.Unmarshal([]byte(strings.TrimSpace(line[len(f[0]):])), &cmd); err != nil {
				t.Errorf("%s: CMD must be a JSON array: %v", dockerfile, err)
			}
		}
		final = append(final, strings.Join(f, " "))
	}
	for _, want := range []string{"USER nonroot", "EXPOSE " + strconv.Itoa(w.port), `ENTRYPOINT ["/rulesd"]`} {
		if !slices.Contains(final, want) {
			t.Errorf("%s: the final stage needs %q", dockerfile, want)
		}
	}
	if !slices.Equal(cmd, w.c.Args) {
		t.Errorf("%s: CMD %q differs from the Deployment's args %q", dockerfile, cmd, w.c.Args)
	}
}
