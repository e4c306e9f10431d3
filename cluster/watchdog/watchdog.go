// Package watchdog owns the Linux watchdog device (/dev/watchdog, served by
// any driver of the kernel's watchdog core, softdog included): opening it
// with a timeout, petting it, and the magic close that stops it when halo
// exits cleanly.
//
// It is the self-fencing half of the cluster's safety argument: a node pets
// its watchdog only while its lease is valid, so a node that lost its lease,
// or whose process hung or died, is reset within the device's timeout, and
// the leader may count on that bound (SBD style) before it frees the node's
// VIPs. A process that dies without the magic close leaves the device
// counting, which is the point.
//
// For tests, Open also takes a FIFO (./fakewatchdog reads it and kills a
// process group when the pets stop) or a regular file; tests must never
// open a real watchdog, which would reset the machine.
package watchdog

import (
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Device is an open watchdog. Its methods may be called from several
// goroutines.
type Device struct {
	path    string
	kind    kind
	timeout time.Duration

	mu     sync.Mutex
	f      *os.File
	closed bool
}

type kind int

const (
	charDevice kind = iota // a real watchdog
	fifo                   // the fake watchdog's stand-in
	regular                // a file that records the pets
)

// The bytes written: any write pets a watchdog, and 'V' as the last byte
// before close is the magic that stops it (the core clears the magic on
// every write that lacks it, so a pet after 'V' re-arms).
const (
	petByte   = 0 // as sbd writes it
	magicByte = 'V'
)

// fifoWriteTimeout bounds a pet to a stand-in whose reader stopped reading.
const fifoWriteTimeout = time.Second

// ErrTimeout: the device will not take the timeout asked for: it would
// reset the node later than the cluster counts on.
var ErrTimeout = errors.New("watchdog timeout not accepted")

// Open opens the watchdog at path, which must exist (Open never creates
// it). A character device is a real watchdog: opening it starts it; Open
// sets its timeout (WDIOC_SETTIMEOUT, rounded up to whole seconds; 0 keeps
// the device's own) and reads back the one the driver chose
// (WDIOC_GETTIMEOUT): a longer one than asked is an error, since the leader
// computes its self-fencing bound from the configured timeout. On any error
// after the device is open, Open stops it again with the magic close, so a
// failed Open does not reset the machine.
//
// A FIFO must have a reader (the fake watchdog) or Open fails at once; a
// regular file is appended to. For both, Timeout reports timeout as given.
func Open(path string, timeout time.Duration) (*Device, error) {
	if timeout < 0 {
		return nil, fmt.Errorf("watchdog %s: negative timeout %v", path, timeout)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("watchdog: %w", err)
	}
	d := &Device{path: path, timeout: timeout}
	mode := fi.Mode()
	switch {
	case mode&os.ModeCharDevice != 0:
		d.kind = charDevice
		d.f, err = os.OpenFile(path, os.O_WRONLY, 0)
	case mode&os.ModeNamedPipe != 0:
		// Non-blocking: ENXIO when nobody reads, rather than waiting for a
		// reader that may never come.
		d.kind = fifo
		d.f, err = os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
	case mode.IsRegular():
		d.kind = regular
		d.f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	default:
		return nil, fmt.Errorf("watchdog %s: %v is neither a character device, a FIFO nor a regular file", path, mode.Type())
	}
	if err != nil {
		return nil, fmt.Errorf("watchdog: %w", err)
	}
	if err := d.check(fi); err != nil {
		d.magicClose()
		return nil, err
	}
	if d.kind == charDevice {
		if err := d.setTimeout(timeout); err != nil {
			d.magicClose()
			return nil, err
		}
	}
	return d, nil
}

// check makes sure what was opened is what was looked at (the path did not
// change in between).
func (d *Device) check(want os.FileInfo) error {
	got, err := d.f.Stat()
	if err != nil {
		return fmt.Errorf("watchdog: %w", err)
	}
	if !os.SameFile(got, want) {
		return fmt.Errorf("watchdog %s: changed while being opened", d.path)
	}
	return nil
}

// setTimeout asks the driver for timeout and records the one it has.
func (d *Device) setTimeout(timeout time.Duration) error {
	rc, err := d.f.SyscallConn()
	if err != nil {
		return fmt.Errorf("watchdog %s: %w", d.path, err)
	}
	want := int(math.Ceil(timeout.Seconds()))
	var got int
	var ioctlErr error
	err = rc.Control(func(fd uintptr) {
		if want > 0 {
			if ioctlErr = unix.IoctlSetPointerInt(int(fd), unix.WDIOC_SETTIMEOUT, want); ioctlErr != nil {
				ioctlErr = fmt.Errorf("WDIOC_SETTIMEOUT %ds: %w", want, ioctlErr)
				return
			}
		}
		if got, ioctlErr = unix.IoctlGetInt(int(fd), unix.WDIOC_GETTIMEOUT); ioctlErr != nil {
			ioctlErr = fmt.Errorf("WDIOC_GETTIMEOUT: %w", ioctlErr)
		}
	})
	if err == nil {
		err = ioctlErr
	}
	if err != nil {
		return fmt.Errorf("watchdog %s (is it a watchdog?): %w", d.path, err)
	}
	if want > 0 && got > want {
		return fmt.Errorf("watchdog %s: %w: asked for %ds, the driver set %ds", d.path, ErrTimeout, want, got)
	}
	d.timeout = time.Duration(got) * time.Second
	return nil
}

// Timeout is the device's timeout: the one the driver reported for a real
// watchdog, which may be shorter than asked for.
func (d *Device) Timeout() time.Duration { return d.timeout }

// Path is the path Open was given.
func (d *Device) Path() string { return d.path }

// Pet writes one byte, which restarts the device's countdown.
func (d *Device) Pet() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("watchdog %s: %w", d.path, os.ErrClosed)
	}
	return d.write(petByte)
}

func (d *Device) write(b byte) error {
	if d.kind == fifo {
		if err := d.f.SetWriteDeadline(time.Now().Add(fifoWriteTimeout)); err != nil {
			return fmt.Errorf("watchdog: %w", err)
		}
	}
	if _, err := d.f.Write([]byte{b}); err != nil {
		return fmt.Errorf("watchdog: %w", err)
	}
	return nil
}

// Close stops the watchdog with the magic close (a 'V', then close), so a
// clean stop does not reset the machine. A driver built with nowayout (or
// without magic close support) keeps counting regardless: then the machine
// resets unless something opens and pets the device again.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("watchdog %s: %w", d.path, os.ErrClosed)
	}
	d.closed = true
	return d.magicClose()
}

func (d *Device) magicClose() error {
	werr := d.write(magicByte)
	cerr := d.f.Close()
	if cerr != nil {
		cerr = fmt.Errorf("watchdog: %w", cerr)
	}
	return errors.Join(werr, cerr)
}
