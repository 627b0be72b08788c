// Command etcd is the upstream etcd server entry point, built from the
// module version pinned in go.mod so it always matches the apiserver's client.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
