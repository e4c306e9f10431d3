package config

import (
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"
)

// heartbeatColumn is "schema.table.column", each part a plain identifier,
// so that it can be quoted into the check's query without escaping.
var heartbeatColumn = regexp.MustCompile(`^[A-Za-z0-9_$]+\.[A-Za-z0-9_$]+\.[A-Za-z0-9_$]+$`)

// buildDBCheck builds be.DBCheck from the database check option that
// chooses the backend's checker, if one does.
func (p *parser) buildDBCheck(fc *fileConfig, be *Backend, path string) {
	opts, where := checkerOptions(backendSection(fc, be.Name), fc.Defaults, path)
	var kind DBKind
	var fd *fileDBCheck
	set := 0
	for _, c := range []struct {
		kind DBKind
		fd   *fileDBCheck
	}{
		{DBMySQL, opts.MySQLCheck}, {DBPgSQL, opts.PgSQLCheck}, {DBGalera, opts.GaleraCheck},
		{DBMySQLReplica, opts.MySQLReplicaCheck}, {DBPgSQLStandby, opts.PgSQLStandbyCheck},
	} {
		if c.fd != nil {
			kind, fd = c.kind, c.fd
			set++
		}
	}
	if set != 1 || be.Options.HTTPChk || be.Options.TCPCheck || be.Options.RedisCheck {
		return // none, or several: buildTCPCheck reported those
	}
	kp := where + "." + string(kind)
	ok := true
	fields := yamlFields(reflect.TypeOf(*fd))
	for key, i := range fields {
		if !dbCheckKeys[kind][key] && !reflect.ValueOf(*fd).Field(i).IsNil() {
			p.at(kp+"."+key, "%q is not used by option %s (it takes %s)", key, kind, keyList(dbCheckKeys[kind]))
			ok = false
		}
	}
	if fd.User == nil {
		p.at(kp, "option %s needs a user to log in as", kind)
		ok = false
	}
	password := Secret(or("", fd.Password))
	if fd.Password != nil && fd.PasswordFile != nil {
		p.at(kp+".password-file", "password and password-file exclude each other")
		ok = false
	} else if fd.PasswordFile != nil {
		data, err := os.ReadFile(p.relative(*fd.PasswordFile))
		if err != nil {
			// The error names the file, never its content.
			p.at(kp+".password-file", "reading the password file: %v", err)
			ok = false
		}
		password = Secret(strings.TrimRight(string(data), "\r\n"))
	}
	if fd.Heartbeat != nil && !heartbeatColumn.MatchString(*fd.Heartbeat) {
		p.at(kp+".heartbeat", "heartbeat %q: want schema.table.column, each a plain identifier", *fd.Heartbeat)
		ok = false
	}
	if (kind == DBMySQLReplica || kind == DBPgSQLStandby) && fd.MaxLag == nil {
		p.at(kp, "option %s needs max-lag: how far behind a replica may be and still take traffic", kind)
		ok = false
	}
	if !ok {
		return
	}
	be.DBCheck = &DBCheck{
		Kind:          kind,
		User:          *fd.User,
		Password:      password,
		Database:      or("", fd.Database),
		AllowDonor:    or(false, fd.AllowDonor),
		AllowReadOnly: or(false, fd.AllowReadOnly),
		MaxRecvQueue:  or(0, fd.MaxRecvQueue),
		MaxLag:        time.Duration(or(Duration(0), fd.MaxLag)),
		Heartbeat:     or("", fd.Heartbeat),
		DrainOnLag:    or("down", fd.OnLag) == "drain",
	}
}

func keyList(keys map[string]bool) string {
	return strings.Join(slices.Sorted(maps.Keys(keys)), ", ")
}
