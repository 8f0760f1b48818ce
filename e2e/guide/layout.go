// Package guide holds the guide's example repository, the one the e2e tests
// and the VM image's boot test sync: files by path, ready to commit.
package guide

import "fmt"

// GatewayLayout is the guide's layout with a workload that really runs: an
// HTTP server (busybox httpd, image) behind ClusterIP, NodePort and
// LoadBalancer (lbPort) Services, three replicas in the production overlay
// (apps/overlays/production), and a store with a volume.
func GatewayLayout(image string, lbPort int) map[string]string {
	return map[string]string{
		"apps/base/deployment.yaml": fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: gateway
spec:
  replicas: 1
  selector:
    matchLabels: {app: gateway}
  template:
    metadata:
      labels: {app: gateway}
    spec:
      containers:
      - name: httpd
        image: %[1]s
        command: [sh, -c, 'mkdir -p /www && echo "gateway $(hostname)" > /www/index.html && echo serving && exec httpd -f -v -p 8080 -h /www']
        ports: [{containerPort: 8080}]
        readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
`, image),
		"apps/base/service.yaml": fmt.Sprintf(`apiVersion: v1
kind: Service
metadata:
  name: gateway
spec:
  selector: {app: gateway}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata:
  name: gateway-nodeport
spec:
  type: NodePort
  selector: {app: gateway}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata:
  name: gateway-lb
spec:
  type: LoadBalancer
  selector: {app: gateway}
  ports: [{port: %d, targetPort: 8080}]
`, lbPort),
		"apps/base/store.yaml": fmt.Sprintf(`apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: ledger
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 64Mi}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: store
spec:
  replicas: 1
  strategy: {type: Recreate}
  selector:
    matchLabels: {app: store}
  template:
    metadata:
      labels: {app: store}
    spec:
      containers:
      - name: store
        image: %s
        command: [sh, -c, 'date >> /data/boots; exec sleep 100000']
        volumeMounts: [{name: data, mountPath: /data}]
      volumes:
      - name: data
        persistentVolumeClaim: {claimName: ledger}
`, image),
		"apps/base/kustomization.yaml":                 "resources:\n- deployment.yaml\n- service.yaml\n- store.yaml\n",
		"apps/overlays/production/kustomization.yaml":  "resources:\n- ../../base\npatches:\n- path: patch-replicas.yaml\n",
		"apps/overlays/production/patch-replicas.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: gateway\nspec:\n  replicas: 3\n",
	}
}
