package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// burstKinds maps the kinds the bench generates to their resources.
var burstKinds = map[string]schema.GroupVersionResource{
	"Namespace":  {Version: "v1", Resource: "namespaces"},
	"ConfigMap":  {Version: "v1", Resource: "configmaps"},
	"Service":    {Version: "v1", Resource: "services"},
	"Deployment": {Group: "apps", Version: "v1", Resource: "deployments"},
}

// applyBurst server-side applies the documents of file the way the engine
// applies a wave, so that server B's objects land as fast as A's do: the
// Namespace first, then every object, 32 at a time. With `kubectl apply`
// B's objects trickled in over 40–60 s, and the controller manager's work
// on them (ReplicaSets, Pods, events) was over long before B was read 60 s
// later, while on A the same work fell inside those 60 s: the difference
// then measured when the objects came, not what the engine holds.
func (s *server) applyBurst(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var ns, objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return err
		}
		if len(u.Object) == 0 {
			continue
		}
		if u.GetKind() == "Namespace" {
			ns = append(ns, u)
		} else {
			objs = append(objs, u)
		}
	}
	for _, stage := range [][]*unstructured.Unstructured{ns, objs} {
		if err := s.applyConcurrently(stage, 32); err != nil {
			return err
		}
	}
	return nil
}

func (s *server) applyConcurrently(objs []*unstructured.Unstructured, limit int) error {
	ctx := context.Background()
	sem := make(chan struct{}, limit)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, o := range objs {
		gvr, ok := burstKinds[o.GetKind()]
		if !ok {
			return fmt.Errorf("applyBurst: no resource for kind %s", o.GetKind())
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			var err error
			if o.GetNamespace() == "" {
				_, err = s.dyn.Resource(gvr).Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: "bench", Force: true})
			} else {
				_, err = s.dyn.Resource(gvr).Namespace(o.GetNamespace()).Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: "bench", Force: true})
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s %s: %w", o.GetKind(), o.GetName(), err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
