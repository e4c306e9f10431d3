package config

import (
	"crypto/subtle"
	"fmt"
	"slices"
	"strings"

	"github.com/go-crypt/crypt"
	"github.com/go-crypt/crypt/algorithm"
	"github.com/go-crypt/crypt/algorithm/bcrypt"
	"github.com/go-crypt/crypt/algorithm/md5crypt"
	"github.com/go-crypt/crypt/algorithm/sha1crypt"
	"github.com/go-crypt/crypt/algorithm/shacrypt"
)

// fileUserlist is a "userlist" section: users and groups, as in HAProxy.
type fileUserlist struct {
	Groups map[string][]string  `yaml:"groups"`
	Users  map[string]*fileUser `yaml:"users"`
}

type fileUser struct {
	Password         *string  `yaml:"password"`
	InsecurePassword *string  `yaml:"insecure-password"`
	Groups           []string `yaml:"groups"`
}

// Userlist is a userlist section: who may pass "http-request auth" and
// the http_auth and http_auth_group fetches.
type Userlist struct {
	Name  string
	Users map[string]*User
}

// User is a user of a userlist, with the password checked as HAProxy's
// crypt(3) checks it (a hash) or as written (insecure-password).
type User struct {
	Name   string
	Groups []string // the groups the user is in: its own line's and the groups naming it
	plain  []byte
	digest algorithm.Digest
}

// Check reports whether password is the user's.
func (u *User) Check(password []byte) bool {
	if u.digest != nil {
		return u.digest.MatchBytes(password)
	}
	return subtle.ConstantTimeCompare(password, u.plain) == 1
}

// InGroup reports whether the user is in group g.
func (u *User) InGroup(g string) bool { return slices.Contains(u.Groups, g) }

// hashes reads the crypt(3) hashes HAProxy's libc would verify that a
// maintained library speaks: MD5 ($1$), SHA-256 ($5$), SHA-512 ($6$),
// bcrypt ($2a$, $2b$, $2y$) and SHA-1 ($sha1$).
var hashes = func() *crypt.Decoder {
	d := crypt.NewDecoder()
	for _, reg := range []func(algorithm.DecoderRegister) error{md5crypt.RegisterDecoderCommon, shacrypt.RegisterDecoder,
		bcrypt.RegisterDecoderStandard, sha1crypt.RegisterDecoder} {
		if err := reg(d); err != nil {
			panic(err)
		}
	}
	return d
}()

func (p *parser) buildUserlists(cfg *Config, fc *fileConfig) {
	for name, fl := range fc.Userlists {
		path := joinPath("userlists", name)
		ul := &Userlist{Name: name, Users: map[string]*User{}}
		for uname, fu := range fl.Users {
			up := joinPath(joinPath(path, "users"), uname)
			u := &User{Name: uname, Groups: slices.Clone(fu.Groups)}
			switch {
			case fu.Password != nil && fu.InsecurePassword != nil, fu.Password == nil && fu.InsecurePassword == nil:
				p.at(up, "user %q needs one of password (a crypt(3) hash) and insecure-password", uname)
				continue
			case fu.InsecurePassword != nil:
				u.plain = []byte(*fu.InsecurePassword)
			default:
				d, err := hashes.Decode(*fu.Password)
				if err != nil {
					p.at(up+".password", "user %q: the password is not a hash halo can check (%v): halo verifies MD5 ($1$), SHA-256 ($5$), SHA-512 ($6$), bcrypt ($2b$, $2y$) and SHA-1 ($sha1$) crypt hashes; Debian's mkpasswd writes yescrypt ($y$) unless given -m sha-512", uname, shortErr(err))
					continue
				}
				u.digest = d
			}
			for _, g := range u.Groups {
				if _, ok := fl.Groups[g]; !ok {
					p.at(up+".groups", "user %q names group %q, which userlist %s does not have", uname, g, name)
				}
			}
			ul.Users[uname] = u
		}
		for g, members := range fl.Groups {
			for _, m := range members {
				for _, each := range strings.Split(m, ",") { // HAProxy's "users a,b"
					u := ul.Users[strings.TrimSpace(each)]
					if u == nil {
						if _, known := fl.Users[strings.TrimSpace(each)]; !known {
							p.at(joinPath(joinPath(path, "groups"), g), "group %q names user %q, which userlist %s does not have", g, each, name)
						}
						continue
					}
					if !u.InGroup(g) {
						u.Groups = append(u.Groups, g)
					}
				}
			}
		}
		if cfg.Userlists == nil {
			cfg.Userlists = map[string]*Userlist{}
		}
		cfg.Userlists[name] = ul
	}
}

func shortErr(err error) string {
	return fmt.Sprint(err)
}
