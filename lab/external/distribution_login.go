//go:build linux

package external

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/crypto/bcrypt"
)

// StartDistributionWithLogin runs docker-registry behind htpasswd basic
// auth with one user, as sites run it with `docker login`. Distribution
// checks logins only on the routes it knows: /v2/ and the repository
// routes answer 401 without one, while an unknown route such as
// /v2/<name>/referrers/<digest> still answers its plain-text 404. The
// htpasswd file and the server's config go into dir, which must be given.
func StartDistributionWithLogin(ctx context.Context, dir, user, password string) (*Distribution, error) {
	if dir == "" {
		return nil, fmt.Errorf("distribution: a folder for the htpasswd file is needed")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		return nil, fmt.Errorf("distribution: htpasswd: %w", err)
	}
	file := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(file, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("distribution: htpasswd: %w", err)
	}
	path, err := json.Marshal(file)
	if err != nil {
		return nil, fmt.Errorf("distribution: %w", err)
	}
	return StartDistribution(ctx, dir, fmt.Sprintf("auth:\n  htpasswd:\n    realm: refdoctor-lab\n    path: %s\n", path))
}
