package cluster

import (
	"encoding/json"
	"io"
	"sync"

	"github.com/hashicorp/raft"
)

// fsm is raft's view of the table: it applies committed entries to its own
// copy (for snapshots) and passes each one to the machine, in log order.
type fsm struct {
	mu    sync.Mutex
	table Table
	post  func(Event)
}

func (f *fsm) Apply(l *raft.Log) any {
	e, err := decodeEntry(l.Data)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.table.Apply(l.Index, e)
	f.mu.Unlock()
	f.post(Committed{Index: l.Index, Entry: e})
	return nil
}

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := json.Marshal(f.table)
	if err != nil {
		return nil, err
	}
	return snapshot(b), nil
}

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	t := NewTable()
	if err := json.NewDecoder(rc).Decode(&t); err != nil {
		return err
	}
	if t.VIPs == nil {
		t.VIPs = map[string]Holding{}
	}
	if t.Fenced == nil {
		t.Fenced = map[string]uint64{}
	}
	f.mu.Lock()
	f.table = t.Clone()
	f.mu.Unlock()
	f.post(Restored{Table: t})
	return nil
}

type snapshot []byte

func (s snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (snapshot) Release() {}
