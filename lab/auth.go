package lab

import (
	"fmt"
	"os"
	"path/filepath"

	olaregconfig "github.com/olareg/olareg/config"
	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/bcrypt"
)

// basicAuthRealm is the realm olareg names in its Basic challenge.
const basicAuthRealm = "refdoctor lab"

// newBasicAuth is olareg's own basic auth with one login and no anonymous
// reads, so that an unauthenticated probe meets a real 401.
//
// It is olareg's file-backed variant rather than NewAuthBasicStatic on
// purpose: the static one hashes with bcrypt's default cost, and olareg
// checks the password on every request, which made seeding the lab take
// over a minute under the race detector. The file holds a minimum-cost
// hash of a random 120-bit password, never the password itself.
func newBasicAuth(dir, name string, login *Login) (olaregconfig.ConfigAuth, error) {
	hash, err := bcrypt.GenerateFromPassword([]byte(login.Password), bcrypt.MinCost)
	if err != nil {
		return olaregconfig.ConfigAuth{}, fmt.Errorf("hash password: %w", err)
	}
	type user struct {
		Cred string `yaml:"cred"`
	}
	type acl struct {
		Repo    string   `yaml:"repo"`
		Access  []string `yaml:"access"`
		Members []string `yaml:"members"`
	}
	doc := struct {
		Users map[string]user `yaml:"users"`
		ACLs  []acl           `yaml:"acls"`
	}{
		Users: map[string]user{login.User: {Cred: string(hash)}},
		ACLs:  []acl{{Repo: "*", Access: []string{"read", "write", "delete"}, Members: []string{login.User}}},
	}
	data, err := yaml.Marshal(doc)
	if err != nil {
		return olaregconfig.ConfigAuth{}, fmt.Errorf("auth file: %w", err)
	}
	file := filepath.Join(dir, "basic-auth-"+safeFileName(name)+".yaml")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		return olaregconfig.ConfigAuth{}, fmt.Errorf("auth file: %w", err)
	}
	return olaregconfig.NewAuthBasicFile(file, olaregconfig.WithAuthRealm(basicAuthRealm)), nil
}

// safeFileName keeps letters, digits, dot and dash of a registry name.
func safeFileName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b)
}
