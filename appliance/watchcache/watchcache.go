// Package watchcache waits for the API server's watch cache of a resource.
//
// The API server builds a custom resource's watch cache on the first
// request for it and answers 429 "retry after 1s" until the cache is
// filled; client-go then sleeps that whole second, where filling the cache
// takes tens of milliseconds. Controllers that start right after their CRD
// call Await first, so their informers' first list does not stall.
package watchcache

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
)

// Await asks for one item of the collection at path (e.g.
// /apis/bitnami.com/v1alpha1/sealedsecrets), from the cache and without
// retries, every 20 ms until the answer is not 429 or max has passed.
func Await(ctx context.Context, client rest.Interface, path string, max time.Duration) {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		err := client.Get().AbsPath(path).Param("limit", "1").Param("resourceVersion", "0").
			MaxRetries(0).Do(ctx).Error()
		if !apierrors.IsTooManyRequests(err) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}
