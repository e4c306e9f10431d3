package watchdog

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Tests never open a real watchdog (it would reset the machine): they use
// regular files, FIFOs, the fake watchdog, and /dev/null as a character
// device that is not one.

func TestRegularFileRecordsPetsAndMagicClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dog")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := Open(path, 2500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if d.Timeout() != 2500*time.Millisecond || d.Path() != path {
		t.Errorf("Timeout = %v, Path = %q", d.Timeout(), d.Path())
	}
	for i := 0; i < 3; i++ {
		if err := d.Pet(); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "\x00\x00\x00V" {
		t.Errorf("the device got %q, want three pets and the magic 'V'", got)
	}
	if err := d.Pet(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Pet after Close = %v, want os.ErrClosed", err)
	}
	if err := d.Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("second Close = %v, want os.ErrClosed", err)
	}
}

func TestOpenNeverCreates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "watchdog")
	if _, err := Open(path, time.Second); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open of a missing path = %v, want ErrNotExist", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open created %s", path)
	}
	if _, err := Open(t.TempDir(), time.Second); err == nil {
		t.Error("Open of a directory: no error")
	}
	if _, err := Open(path, -time.Second); err == nil {
		t.Error("Open with a negative timeout: no error")
	}
}

// A character device that is not a watchdog refuses WDIOC_SETTIMEOUT, and
// Open says so instead of pretending it has a watchdog.
func TestOpenCharDeviceThatIsNoWatchdog(t *testing.T) {
	fi, err := os.Stat("/dev/null")
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Skip("no /dev/null character device")
	}
	_, err = Open("/dev/null", 5*time.Second)
	if !errors.Is(err, unix.ENOTTY) {
		t.Fatalf("Open(/dev/null) = %v, want ENOTTY from WDIOC_SETTIMEOUT", err)
	}
	t.Log(err)
}

func TestOpenFIFOWithoutReaderFailsAtOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := Open(path, time.Second); !errors.Is(err, unix.ENXIO) {
		t.Fatalf("Open of a FIFO nobody reads = %v, want ENXIO", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Open waited %v for a reader", took)
	}
}

func TestFIFOCarriesPetsAndMagic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	d, err := Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Pet(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r) // to EOF: the writer closed
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, []byte{0, 'V'}) {
		t.Errorf("the reader got %q, want a pet then 'V'", got)
	}
}

// A pet to a stand-in whose reader is gone is an error, not a hang.
func TestPetWithoutReaderFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if err := d.Pet(); !errors.Is(err, syscall.EPIPE) {
		t.Errorf("Pet with the reader gone = %v, want EPIPE", err)
	}
	d.Close()
}
