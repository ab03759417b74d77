package bundle

import (
	"testing"

	"github.com/regclient/regclient/types/mediatype"
)

// TestMediaTypesMatchTheRegistryClient: the validator spells the media
// types out so that it links no registry client; they must stay the
// values export and import use, or a manifest would validate as a blob.
func TestMediaTypesMatchTheRegistryClient(t *testing.T) {
	for _, c := range []struct{ ours, theirs string }{
		{mediaTypeOCIManifest, mediatype.OCI1Manifest},
		{mediaTypeOCIIndex, mediatype.OCI1ManifestList},
		{mediaTypeDockerManifest, mediatype.Docker2Manifest},
		{mediaTypeDockerManifestList, mediatype.Docker2ManifestList},
		{mediaTypeDockerForeignLayer, mediatype.Docker2ForeignLayer},
	} {
		if c.ours != c.theirs {
			t.Errorf("bundle reads %q where export writes %q", c.ours, c.theirs)
		}
	}
	if !isManifestMediaType(mediatype.OCI1ManifestList) || isManifestMediaType(mediatype.OCI1Layer) {
		t.Error("an index is not read as a manifest, or a layer is")
	}
}
