package proxy

import (
	"os"
	"testing"

	"github.com/halo-lb/halo/internal/testdb"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testdb.StopAll()
	os.Exit(code)
}
