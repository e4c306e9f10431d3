package config

// fileCluster is the cluster section as written (see cluster.go for what
// it becomes and docs/configuration.md for every key).
type fileCluster struct {
	Node       *string       `yaml:"node"`
	Bind       *string       `yaml:"bind"`
	DataDir    *string       `yaml:"data-dir" validate:"omitempty,min=1"`
	Peers      []*filePeer   `yaml:"peers" validate:"dive"`
	EvenVoters *string       `yaml:"even-voters" validate:"omitempty,min=1"`
	Lease      *Duration     `yaml:"lease"`
	VIPs       []*fileVIP    `yaml:"vips" validate:"dive"`
	ARP        *fileARP      `yaml:"arp"`
	Fencing    *fileFencing  `yaml:"fencing"`
	Watchdog   *fileWatchdog `yaml:"watchdog"`
}

type filePeer struct {
	Name    *string `yaml:"name"`
	Address *string `yaml:"address"`
	Witness *bool   `yaml:"witness"`
}

type fileVIP struct {
	Address   *string `yaml:"address"`
	Interface *string `yaml:"interface"`
	Prefer    *string `yaml:"prefer"`
	Require   *string `yaml:"require" validate:"omitempty,oneof=listening servers-up"`
}

type fileARP struct {
	Count    *int      `yaml:"count" validate:"omitempty,min=0,max=100"`
	Interval *Duration `yaml:"interval"`
	Refresh  *Duration `yaml:"refresh"`
}

type fileFencing struct {
	Timeout *Duration                  `yaml:"timeout"`
	Action  *string                    `yaml:"action" validate:"omitempty,oneof=off reboot"`
	Nodes   map[string]*fileFenceAgent `yaml:"nodes" validate:"dive"`
}

type fileFenceAgent struct {
	Agent *string `yaml:"agent"`
	// Options are nil where the file wrote no value (ip: ~), so that
	// the build step can say so.
	Options map[string]*fenceOptionValue `yaml:"options"`
}

// fenceOptionValue is a fence agent option's value: any YAML scalar, kept
// as written, since every option reaches the agent as text (port: 623 and
// lanplus: true are "623" and "true").
type fenceOptionValue string

type fileWatchdog struct {
	Device  *string   `yaml:"device"`
	Timeout *Duration `yaml:"timeout"`
}
