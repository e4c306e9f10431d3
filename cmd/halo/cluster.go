package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/halo-lb/halo/cluster"
	"github.com/halo-lb/halo/config"
)

// cmdCluster is `halo cluster status|unfence`: it asks the running node
// whose configuration is -c, through its control socket in the data-dir.
func cmdCluster(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cluster", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", defaultConfigPath, "configuration file of the local node")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: halo cluster [-c FILE] status [json]\n       halo cluster [-c FILE] unfence NODE\n")
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	words := fs.Args()
	// Flags may also follow the subcommand: halo cluster status -c FILE.
	for i := 0; i < len(words); i++ {
		if words[i] == "-c" && i+1 < len(words) {
			*path = words[i+1]
			words = append(words[:i:i], words[i+2:]...)
			i--
		}
	}
	if len(words) == 0 {
		words = []string{"status"}
	}
	switch words[0] {
	case "status", "unfence":
	default:
		fs.Usage()
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if cfg.Cluster == nil {
		fmt.Fprintf(stderr, "halo: %s has no cluster section\n", *path)
		return 1
	}
	out, err := cluster.Ask(cfg.Cluster.DataDir, words)
	if err != nil {
		fmt.Fprintf(stderr, "halo: %v\n", err)
		return 1
	}
	if strings.HasPrefix(out, "error: ") {
		fmt.Fprint(stderr, out)
		return 1
	}
	fmt.Fprint(stdout, out)
	return 0
}
