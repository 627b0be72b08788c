//go:build tools

// Package tools pins the binaries the tests run: kube-apiserver and etcd.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
)
