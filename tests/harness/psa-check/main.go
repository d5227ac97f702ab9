// psa-check evaluates the pod templates in Kubernetes manifests against a Pod Security
// Standards level with k8s.io/pod-security-admission, the code behind the API server's
// PodSecurity admission: a pod it forbids would be rejected in a namespace enforcing the level.
//
//	psa-check [-level restricted] [-version latest] FILE|- ...
//
// A Namespace in the input with a pod-security.kubernetes.io/enforce label sets the level
// (and enforce-version the version) for the workloads in it; -level and -version apply to
// the others. It exits 1 if a pod template is forbidden or none was found, 2 on bad input.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"
)

const (
	enforceLabel        = "pod-security.kubernetes.io/enforce"
	enforceVersionLabel = "pod-security.kubernetes.io/enforce-version"
)

// workload is one pod template found in the input, with where it came from.
type workload struct {
	name      string // Kind namespace/name
	namespace string
	meta      metav1.ObjectMeta
	spec      corev1.PodSpec
}

func main() {
	level := flag.String("level", "restricted", "Pod Security Standards level for pods outside a labelled Namespace")
	version := flag.String("version", "latest", "version of the level's checks")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: psa-check [-level restricted] [-version latest] FILE|- ...")
		os.Exit(2)
	}
	defaults, err := levelVersion(*level, *version)
	check(err)
	namespaces := map[string]api.LevelVersion{}
	var workloads []workload
	for _, path := range flag.Args() {
		docs, err := readDocs(path)
		check(err)
		for _, doc := range docs {
			found, err := parse(doc, namespaces)
			check(err)
			workloads = append(workloads, found...)
		}
	}
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks())
	check(err)
	forbidden := 0
	for _, w := range workloads {
		lv, ok := namespaces[w.namespace]
		if !ok {
			lv = defaults
		}
		result := policy.AggregateCheckResults(evaluator.EvaluatePod(lv, &w.meta, &w.spec))
		if result.Allowed {
			fmt.Printf("%s: allowed by %s:%s\n", w.name, lv.Level, lv.Version)
			continue
		}
		forbidden++
		for i, reason := range result.ForbiddenReasons {
			fmt.Printf("%s: forbidden by %s:%s: %s (%s)\n", w.name, lv.Level, lv.Version, reason, result.ForbiddenDetails[i])
		}
	}
	fmt.Printf("Summary: %d pod templates - allowed: %d, forbidden: %d\n", len(workloads), len(workloads)-forbidden, forbidden)
	if forbidden > 0 || len(workloads) == 0 {
		os.Exit(1)
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "psa-check:", err)
		os.Exit(2)
	}
}

func levelVersion(level, version string) (api.LevelVersion, error) {
	l, err := api.ParseLevel(level)
	if err != nil {
		return api.LevelVersion{}, err
	}
	v, err := api.ParseVersion(version)
	if err != nil {
		return api.LevelVersion{}, err
	}
	return api.LevelVersion{Level: l, Version: v}, nil
}

func readDocs(path string) ([][]byte, error) {
	var in io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		in = f
	}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(in))
	var docs [][]byte
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if strings.TrimSpace(string(doc)) != "" {
			docs = append(docs, doc)
		}
	}
}

// templates decode the pod template of each workload kind.
var templates = map[string]func([]byte) (corev1.PodTemplateSpec, error){
	"Pod": decode(func(p *corev1.Pod) corev1.PodTemplateSpec {
		return corev1.PodTemplateSpec{ObjectMeta: p.ObjectMeta, Spec: p.Spec}
	}),
	"Deployment":  decode(func(d *appsv1.Deployment) corev1.PodTemplateSpec { return d.Spec.Template }),
	"StatefulSet": decode(func(s *appsv1.StatefulSet) corev1.PodTemplateSpec { return s.Spec.Template }),
	"DaemonSet":   decode(func(d *appsv1.DaemonSet) corev1.PodTemplateSpec { return d.Spec.Template }),
	"ReplicaSet":  decode(func(r *appsv1.ReplicaSet) corev1.PodTemplateSpec { return r.Spec.Template }),
	"Job":         decode(func(j *batchv1.Job) corev1.PodTemplateSpec { return j.Spec.Template }),
	"CronJob": decode(func(c *batchv1.CronJob) corev1.PodTemplateSpec {
		return c.Spec.JobTemplate.Spec.Template
	}),
}

func decode[T any](template func(*T) corev1.PodTemplateSpec) func([]byte) (corev1.PodTemplateSpec, error) {
	return func(doc []byte) (corev1.PodTemplateSpec, error) {
		var object T
		err := yaml.Unmarshal(doc, &object)
		return template(&object), err
	}
}

// parse returns the pod template of one document, if it has one; a Namespace records the
// level it enforces.
func parse(doc []byte, namespaces map[string]api.LevelVersion) ([]workload, error) {
	var head struct {
		Kind     string            `json:"kind"`
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return nil, err
	}
	if head.Kind == "Namespace" {
		level, ok := head.Metadata.Labels[enforceLabel]
		if !ok {
			return nil, nil
		}
		version := head.Metadata.Labels[enforceVersionLabel]
		if version == "" {
			version = "latest"
		}
		lv, err := levelVersion(level, version)
		if err != nil {
			return nil, fmt.Errorf("namespace %s: %w", head.Metadata.Name, err)
		}
		namespaces[head.Metadata.Name] = lv
		return nil, nil
	}
	template, ok := templates[head.Kind]
	if !ok {
		return nil, nil
	}
	t, err := template(doc)
	if err != nil {
		return nil, err
	}
	name := fmt.Sprintf("%s %s/%s", head.Kind, head.Metadata.Namespace, head.Metadata.Name)
	return []workload{{name: name, namespace: head.Metadata.Namespace, meta: t.ObjectMeta, spec: t.Spec}}, nil
}
