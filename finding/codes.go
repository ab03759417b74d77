package finding

// Code names one kind of finding or validation problem. Codes are part of
// the JSON contract: scripts match on them, so a code never changes
// meaning. Every code has a remedy in catalog, next to its declaration; a
// test keeps the two in step.
type Code string

// Remedy is the code's default next step for the operator.
func (c Code) Remedy() string { return catalog[c] }

// Known reports whether c is one of refdoctor's codes.
func (c Code) Known() bool { _, ok := catalog[c]; return ok }

// Probe: the referrers API verdict and what decided it.
const (
	ReferrersAPISupported     Code = "ReferrersAPISupported"
	ReferrersNotFound         Code = "ReferrersNotFound"
	ReferrersMethodNotAllowed Code = "ReferrersMethodNotAllowed"
	ReferrersNotAcceptable    Code = "ReferrersNotAcceptable"
	ReferrersNotImplemented   Code = "ReferrersNotImplemented"
	ReferrersHTMLReply        Code = "ReferrersHTMLReply"
	ReferrersNotAnIndex       Code = "ReferrersNotAnIndex"
	ReferrersMalformedIndex   Code = "ReferrersMalformedIndex"
	ReferrersWrongContentType Code = "ReferrersWrongContentType"
	ReferrersEmptyObject      Code = "ReferrersEmptyObject"
	ReferrersUnknownSubject   Code = "ReferrersUnknownSubject"
	ReferrersBadRequest       Code = "ReferrersBadRequest"
	ReferrersAuthRefused      Code = "ReferrersAuthRefused"
	ReferrersRateLimited      Code = "ReferrersRateLimited"
	ReferrersServerError      Code = "ReferrersServerError"
	ReferrersUnexpectedStatus Code = "ReferrersUnexpectedStatus"
	ReferrersReplyTooLarge    Code = "ReferrersReplyTooLarge"
	ReferrersRedirected       Code = "ReferrersRedirected"
	ReprobedWithRealDigest    Code = "ReprobedWithRealDigest"
	NotARegistry              Code = "NotARegistry"
	RepositoryNotFound        Code = "RepositoryNotFound"
	RepositoryEmpty           Code = "RepositoryEmpty"
	NoRepositoryGiven         Code = "NoRepositoryGiven"
	NoDiscoveryPath           Code = "NoDiscoveryPath"
	AuthFailed                Code = "AuthFailed"
	PlainHTTPToTLSServer      Code = "PlainHTTPToTLSServer"
	ExpectationMismatch       Code = "ExpectationMismatch"
	VersionDependent          Code = "VersionDependent"
	KnownBehaviour            Code = "KnownBehaviour"
	CachedVerdict             Code = "CachedVerdict"
	CacheConfirmed            Code = "CacheConfirmed"
	CacheStale                Code = "CacheStale"
	RateLimitLow              Code = "RateLimitLow"
	ClientSetup               Code = "ClientSetup"
	BadReference              Code = "BadReference"
)

// Transport: what went wrong below HTTP.
const (
	TLSUnknownAuthority   Code = "TLSUnknownAuthority"
	TLSCertificateExpired Code = "TLSCertificateExpired"
	TLSCertificateInvalid Code = "TLSCertificateInvalid"
	TLSWrongHost          Code = "TLSWrongHost"
	TLSPlainHTTPServer    Code = "TLSPlainHTTPServer"
	Timeout               Code = "Timeout"
	DNSFailure            Code = "DNSFailure"
	ConnectionRefused     Code = "ConnectionRefused"
	Canceled              Code = "Canceled"
	NetworkError          Code = "NetworkError"
	TooManyRedirects      Code = "TooManyRedirects"
)

// Discovery: listing referrers.
const (
	ImageNotFound               Code = "ImageNotFound"
	DigestMismatch              Code = "DigestMismatch"
	CapabilityUnknown           Code = "CapabilityUnknown"
	APIFellBackToTags           Code = "APIFellBackToTags"
	APIAndTagIndexDisagree      Code = "APIAndTagIndexDisagree"
	CosignTagsUnchecked         Code = "CosignTagsUnchecked"
	FallbackTagNotIndex         Code = "FallbackTagNotIndex"
	FallbackIndexMissingEntry   Code = "FallbackIndexMissingEntry"
	FallbackIndexDuplicate      Code = "FallbackIndexDuplicate"
	FallbackIndexNoArtifactType Code = "FallbackIndexNoArtifactType"
	FallbackIndexEntryMissing   Code = "FallbackIndexEntryMissing"
	FallbackIndexWrongSubject   Code = "FallbackIndexWrongSubject"
	LenientFirstPageOnly        Code = "LenientFirstPageOnly"
	NoReferrersOnIndex          Code = "NoReferrersOnIndex"
	ReferrersOnPlatforms        Code = "ReferrersOnPlatforms"
	ReferrersOnPlatformsOnly    Code = "ReferrersOnPlatformsOnly"
	PartialReferrers            Code = "PartialReferrers"
	PaginationLoop              Code = "PaginationLoop"
	PaginationLimit             Code = "PaginationLimit"
	RateLimited                 Code = "RateLimited"
	RateLimitWaited             Code = "RateLimitWaited"
	AuthRefused                 Code = "AuthRefused"
	RequestFailed               Code = "RequestFailed"
	ArtifactTypeMislabelled     Code = "ArtifactTypeMislabelled"
	TooFewReferrers             Code = "TooFewReferrers"
	OrphanTags                  Code = "OrphanTags"
	NoReferrerTags              Code = "NoReferrerTags"
	NoReferrersFound            Code = "NoReferrersFound"
	CatalogUnavailable          Code = "CatalogUnavailable"
	CatalogCut                  Code = "CatalogCut"
	ReferrersRepositoryTags     Code = "ReferrersRepositoryTags"
)

// Bundle validation problems (the "errors" of bundle validate).
const (
	ReferrerChecksumMismatch Code = "ReferrerChecksumMismatch"
	FileChecksumMismatch     Code = "FileChecksumMismatch"
	SizeMismatch             Code = "SizeMismatch"
	MissingFile              Code = "MissingFile"
	UnlistedFile             Code = "UnlistedFile"
	MissingBlob              Code = "MissingBlob"
	ReferrerCountMismatch    Code = "ReferrerCountMismatch"
	SubjectMismatch          Code = "SubjectMismatch"
	ReferrerNameMismatch     Code = "ReferrerNameMismatch"
	ReferrerMetadataMismatch Code = "ReferrerMetadataMismatch"
	MalformedReferrer        Code = "MalformedReferrer"
	MissingManifest          Code = "MissingManifest"
	MalformedManifest        Code = "MalformedManifest"
	UnsupportedVersion       Code = "UnsupportedVersion"
	MalformedLayout          Code = "MalformedLayout"
	IndexMismatch            Code = "IndexMismatch"
	NotABundle               Code = "NotABundle"
	UnsafePath               Code = "UnsafePath"
	LinkMember               Code = "LinkMember"
	DeviceMember             Code = "DeviceMember"
	UnsupportedMember        Code = "UnsupportedMember"
	DuplicateMember          Code = "DuplicateMember"
	AmbiguousMember          Code = "AmbiguousMember"
	AmbiguousDocument        Code = "AmbiguousDocument"
	MemberCollision          Code = "MemberCollision"
	CaseCollision            Code = "CaseCollision"
	MemberTooLarge           Code = "MemberTooLarge"
	DecompressionBomb        Code = "DecompressionBomb"
	TruncatedArchive         Code = "TruncatedArchive"
	CorruptArchive           Code = "CorruptArchive"
	TrailingData             Code = "TrailingData"
	LimitExceeded            Code = "LimitExceeded"
	SignatureMissing         Code = "SignatureMissing"
	SignatureInvalid         Code = "SignatureInvalid"
	UnknownKey               Code = "UnknownKey"
	ImageSignatureInvalid    Code = "ImageSignatureInvalid"
	ImageSignatureUnknownKey Code = "ImageSignatureUnknownKey"
	ImageUnsigned            Code = "ImageUnsigned"
)

// Mirror: export, import, diff and compare against live registries.
const (
	ImportRefused               Code = "ImportRefused"
	NotImported                 Code = "NotImported"
	FallbackIndexLostUpdate     Code = "FallbackIndexLostUpdate"
	ReferrerMissingAfterImport  Code = "ReferrerMissingAfterImport"
	ReconcileIncomplete         Code = "ReconcileIncomplete"
	ReferrersChangedSinceExport Code = "ReferrersChangedSinceExport"
	ImageTagMoved               Code = "ImageTagMoved"
	DiffIncomplete              Code = "DiffIncomplete"
	ReferrerMissingAtMirror     Code = "ReferrerMissingAtMirror"
	ReferrerExtraAtMirror       Code = "ReferrerExtraAtMirror"
	ReferrerRewritten           Code = "ReferrerRewritten"
	CompareIncomplete           Code = "CompareIncomplete"
	// Why a referrer is missing at a mirror (compare): each names one
	// cause observed at the destination.
	ImageMissingAtMirror      Code = "ImageMissingAtMirror"
	MirrorNoFallbackTag       Code = "MirrorNoFallbackTag"
	ReferrerSubjectRewritten  Code = "ReferrerSubjectRewritten"
	CosignTagNotCopied        Code = "CosignTagNotCopied"
	ReferrerNotListed         Code = "ReferrerNotListed"
	ReferrerInOtherRepository Code = "ReferrerInOtherRepository"
	MirrorCacheNoReferrers    Code = "MirrorCacheNoReferrers"
)

// Runbook, logs and telemetry.
const (
	FallbackTagDiscovery       Code = "FallbackTagDiscovery"
	InventedVersionHeader      Code = "InventedVersionHeader"
	NoProbeLines               Code = "NoProbeLines"
	ProbeCountMismatch         Code = "ProbeCountMismatch"
	ProbeFailed                Code = "ProbeFailed"
	ProbesUndecided            Code = "ProbesUndecided"
	SlowRegistry               Code = "SlowRegistry"
	DiscoveryFailures          Code = "DiscoveryFailures"
	DiscoveryFailuresCounted   Code = "DiscoveryFailuresCounted"
	DiscoveryByTagsExpectedAPI Code = "DiscoveryByTagsExpectedAPI"
	PrometheusUnreachable      Code = "PrometheusUnreachable"
	PrometheusError            Code = "PrometheusError"
	NoTelemetry                Code = "NoTelemetry"
	NoExportSeries             Code = "NoExportSeries"
	ConfigInvalid              Code = "ConfigInvalid"
)

// catalog holds every code's default remedy: the next step when the
// finding itself has no more specific one.
var catalog = map[Code]string{
	ReferrersAPISupported:     "Nothing to fix: discovery uses the referrers API.",
	ReferrersNotFound:         "Discovery falls back to the referrers tag schema (sha256-<hex> tags); check them with `refdoctor tags HOST/REPO` and make sure the tools that attach SBOMs and signatures maintain them.",
	ReferrersMethodNotAllowed: "Enable the referrers API on the registry, or rely on the tag schema: `refdoctor tags HOST/REPO`.",
	ReferrersNotAcceptable:    "Upgrade JFrog Artifactory to 7.90.1 or later for the API; until then discovery uses fallback tags.",
	ReferrersNotImplemented:   "Rely on the tag schema (`refdoctor tags HOST/REPO`) until the registry serves the API.",
	ReferrersHTMLReply:        "A login page or proxy answered: check the registry URL and any proxy in between; discovery uses fallback tags.",
	ReferrersNotAnIndex:       "Something other than the referrers API answers the path (a catch-all route or proxy); discovery uses fallback tags.",
	ReferrersMalformedIndex:   "Report the registry bug with the reply shown; discovery uses fallback tags meanwhile.",
	ReferrersWrongContentType: "Upgrade the registry (Harbor 2.11 or later); refdoctor reads the reply leniently, strict clients see nothing.",
	ReferrersEmptyObject:      "Probe again with a digest that exists: refdoctor probe HOST/REPO@DIGEST.",
	ReferrersUnknownSubject:   "Probe again with a digest that exists: refdoctor probe HOST/REPO@DIGEST.",
	ReferrersBadRequest:       "Check the digest and repository, then probe again with HOST/REPO@DIGEST; compare with `oras discover`.",
	ReferrersAuthRefused:      "Log in with pull access to the repository (docker login HOST, or a credential helper), then probe again.",
	ReferrersRateLimited:      "Wait for the rate-limit window, log in for a higher limit, or lower max_concurrent_discoveries.",
	ReferrersServerError:      "Retry later; check the registry's status page and logs.",
	ReferrersUnexpectedStatus: "Compare with `curl -si` and `oras discover`; report the registry and version.",
	ReferrersReplyTooLarge:    "Filter with --artifact-type, or raise --max-reply-size if the registry really lists this much.",
	ReferrersRedirected:       "Nothing to fix: the redirect was followed; check the chain in the exchanges if the final reply looks wrong.",
	ReprobedWithRealDigest:    "Nothing to fix: the verdict comes from the second probe.",
	NotARegistry:              "Check the host, port and path: a web server, proxy or login page answers instead of a registry's /v2/.",
	RepositoryNotFound:        "Check the repository name (and that the login may see it), then probe again.",
	CatalogUnavailable:        "Type the repository (HOST/REPO) instead; the registry's web page or its API lists them.",
	CatalogCut:                "Type the repository (HOST/REPO) instead of picking it from the list.",
	RepositoryEmpty:           "Check the repository name; probe HOST/REPO@DIGEST with an image you know is there.",
	NoRepositoryGiven:         "For a certain verdict give an existing repository: refdoctor probe HOST/REPO.",
	NoDiscoveryPath:           "Grant pull (and list) permission on the repository, or use a registry with the referrers API.",
	AuthFailed:                "docker login HOST (or configure a credential helper), then probe again.",
	PlainHTTPToTLSServer:      "Drop --plain-http for this host (or plain_http in the config).",
	ExpectationMismatch:       "Trust the observation; check the registry version, and correct the matrix row if the vendor changed behaviour.",
	VersionDependent:          "Upgrade the registry to the version the matrix names for the API; until then discovery uses fallback tags.",
	KnownBehaviour:            "Follow the matrix row's advice for this registry.",
	CachedVerdict:             "Run with --refresh (or `refdoctor cache clear HOST`) for a fresh verdict.",
	CacheConfirmed:            "Nothing to fix.",
	CacheStale:                "Nothing to fix: the stale verdict was replaced by a fresh probe.",
	RateLimitLow:              "Slow down, log in for a higher limit, or wait for the window to reset.",
	ClientSetup:               "Fix the [[registry]] entry for this host in the config.",
	BadReference:              "Write HOST/REPO:TAG or HOST/REPO@sha256:DIGEST.",

	TLSUnknownAuthority:   "Add the CA: ca_file in the [[registry]] config (or /etc/docker/certs.d/HOST/ca.crt); --insecure HOST skips verification for a test only.",
	TLSCertificateExpired: "Renew the registry certificate; check `openssl s_client -connect HOST:443 -servername HOST` and this machine's clock.",
	TLSCertificateInvalid: "Inspect the chain with `openssl s_client -connect HOST:443 -servername HOST`.",
	TLSWrongHost:          "Use the host name on the certificate, or reissue the certificate with this name.",
	TLSPlainHTTPServer:    "Add --plain-http HOST:PORT (or plain_http = true in the config).",
	Timeout:               "Raise --timeout (or export.referrer_discovery.timeout_seconds) and check connectivity.",
	DNSFailure:            "Check the host name and this machine's DNS.",
	ConnectionRefused:     "Check the host and port, and that the registry is running.",
	Canceled:              "Run the check again.",
	NetworkError:          "Check connectivity with `curl -v https://HOST/v2/`.",
	TooManyRedirects:      "The registry redirects in a loop: check the URL and any proxy in between.",

	ImageNotFound:               "Check the reference; list tags with `refdoctor tags HOST/REPO` or `regctl tag ls HOST/REPO`.",
	DigestMismatch:              "The registry or a proxy altered the manifest; do not export from it.",
	CapabilityUnknown:           "Run `refdoctor probe HOST/REPO` to see why the registry could not be probed.",
	APIFellBackToTags:           "Nothing to fix for discovery; upgrade the registry for the API.",
	APIAndTagIndexDisagree:      "Re-attach the missing artifacts, or delete the stale tag index once the API holds everything.",
	CosignTagsUnchecked:         "Fix the tag listing (permissions, rate limit) and run discovery again.",
	FallbackTagNotIndex:         "Treat the tag schema as unusable on this registry; check with `crane manifest` what the tag holds.",
	FallbackIndexMissingEntry:   "Re-attach with a client that maintains the fallback index, or `refdoctor bundle import`, which merges it.",
	FallbackIndexDuplicate:      "Rewrite the fallback index without duplicates (re-attach with oras or regctl, or `refdoctor bundle import`).",
	FallbackIndexNoArtifactType: "Re-attach with a client that records artifactType in the fallback index; refdoctor reads each manifest meanwhile.",
	FallbackIndexEntryMissing:   "Remove the dangling entry from the fallback index, or push the missing referrer again.",
	FallbackIndexWrongSubject:   "Remove the entry from this subject's fallback index; attach the referrer to the subject it names.",
	LenientFirstPageOnly:        "Upgrade the registry (Harbor 2.11 or later) so that every page is served as an OCI index.",
	NoReferrersOnIndex:          "Run again with --platforms to look at every platform manifest.",
	ReferrersOnPlatforms:        "Include them when exporting (bundle export walks all platforms).",
	ReferrersOnPlatformsOnly:    "Export the platform digests too (or attach to the index): exports by the index digest miss these.",
	PartialReferrers:            "Fix the failure above and run discovery again before exporting.",
	PaginationLoop:              "Report the registry bug; meanwhile list referrers by tag with --method tags.",
	PaginationLimit:             "Raise --max-referrers if the registry really holds this many, or filter with --artifact-type.",
	RateLimited:                 "Wait until the registry answers again, log in for a higher limit, or lower max_concurrent_discoveries.",
	RateLimitWaited:             "Nothing to fix; log in for a higher limit to avoid waits.",
	AuthRefused:                 "docker login to the registry (or a credential helper) with pull access, then retry.",
	RequestFailed:               "Retry; compare with `regctl artifact list` or `oras discover`.",
	ArtifactTypeMislabelled:     "Nothing to fix in refdoctor (it reads each manifest's own type); report the registry's listing bug.",
	TooFewReferrers:             "Attach the missing artifacts, or lower --min-referrers.",
	OrphanTags:                  "Delete the orphan tags, or re-attach the artifacts to the new digest.",
	NoReferrerTags:              "Nothing is attached by the tag schema; attach with a tool that writes fallback tags if the registry lacks the API.",
	NoReferrersFound:            "Check the digest (index or platform manifest?) and run with --platforms.",
	ReferrersRepositoryTags:     "Nothing to fix; discover or compare an image with --referrers-repo to see its referrers from here.",

	ReferrerChecksumMismatch: "The referrer changed after export: export the bundle again from the source.",
	FileChecksumMismatch:     "The member changed after export: export the bundle again, or copy it again across the gap.",
	SizeMismatch:             "The member changed after export: export the bundle again, or copy it again across the gap.",
	MissingFile:              "The bundle lost a member: copy it again across the gap, or export it again.",
	UnlistedFile:             "Something added a member after export: do not import; export the bundle again.",
	MissingBlob:              "Export the bundle again; the image it names is incomplete.",
	ReferrerCountMismatch:    "manifest.yaml disagrees with itself: export the bundle again.",
	SubjectMismatch:          "The referrer names another subject than its folder: export the bundle again.",
	ReferrerNameMismatch:     "The referrer file's name is not its digest: export the bundle again.",
	ReferrerMetadataMismatch: "manifest.yaml and the stored referrer disagree: export the bundle again with this refdoctor.",
	MalformedReferrer:        "The referrer is not a valid manifest: export the bundle again.",
	MissingManifest:          "This is not a complete bundle: export it again with refdoctor bundle export.",
	MalformedManifest:        "manifest.yaml cannot be trusted: export the bundle again.",
	UnsupportedVersion:       "Use a refdoctor that knows this bundle format version.",
	MalformedLayout:          "The OCI layout (oci-layout, index.json) is damaged: export the bundle again.",
	IndexMismatch:            "index.json and manifest.yaml disagree: export the bundle again.",
	NotABundle:               "Give a refdoctor mirror bundle (.tgz or .tar.zst made by refdoctor bundle export).",
	UnsafePath:               "Do not unpack or import this archive: it writes outside its folder.",
	LinkMember:               "Do not unpack or import this archive: bundles never hold links.",
	DeviceMember:             "Do not unpack or import this archive: bundles never hold devices.",
	UnsupportedMember:        "Do not import this archive: it holds a member type bundles never use.",
	DuplicateMember:          "Do not import this archive: a second member would replace the first when unpacked.",
	AmbiguousMember:          "Do not unpack or import this archive: tar readers disagree on a member's name.",
	AmbiguousDocument:        "Do not import this manifest: JSON readers disagree on what it references. If the source registry serves it so, report it to the image's publisher; else export the bundle again.",
	MemberCollision:          "Do not unpack or import this archive: a directory entry replaces a file when unpacked.",
	CaseCollision:            "Do not unpack this archive on macOS or Windows: two names differ only in case and overwrite each other.",
	MemberTooLarge:           "Do not import this archive: a member is larger than the format allows.",
	DecompressionBomb:        "Do not unpack this archive: it inflates far beyond its listed sizes.",
	TruncatedArchive:         "The copy is incomplete: copy the bundle again across the gap and compare its .sha256.",
	CorruptArchive:           "The archive is damaged: copy it again across the gap and compare its .sha256.",
	TrailingData:             "Bytes follow the archive: copy the bundle again, and do not trust what was appended.",
	LimitExceeded:            "The bundle is larger than this refdoctor's documented limits: split the export into several bundles.",
	SignatureMissing:         "Sign the bundle on the export side (bundle export --sign-key, or bundle sign --key), or drop --require-signature.",
	SignatureInvalid:         "Do not import: the bundle changed after it was signed. Export and sign it again.",
	UnknownKey:               "Verify with the export pipeline's public key (--verify-key), or find out who signed this bundle.",
	ImageSignatureInvalid:    "Do not deploy the image: its signature does not verify. Sign it again at the source.",
	ImageSignatureUnknownKey: "Verify with the key that signed the image, or find out who signed it.",
	ImageUnsigned:            "Sign the image at the source (cosign sign --key) and export again.",

	ImportRefused:               "Fix the validation problems above (or export the bundle again), then import.",
	NotImported:                 "Export the damaged parts again and import the new bundle.",
	FallbackIndexLostUpdate:     "Another writer changed the fallback index during the import: run the import again; it merges.",
	ReferrerMissingAfterImport:  "Run the import again; if it still misses, check the target's referrers support with refdoctor probe.",
	ReconcileIncomplete:         "Run the import again once the target answers; nothing was judged missing.",
	ReferrersChangedSinceExport: "Export the bundle again to carry the current referrers.",
	ImageTagMoved:               "Export again if the new image is the one to mirror.",
	DiffIncomplete:              "Fix the failure named above and run bundle diff again; nothing was judged added or removed.",
	ReferrerMissingAtMirror:     "Copy the referrers too: regctl image copy --referrers SOURCE DEST (or oras cp -r, or a bundle).",
	ReferrerExtraAtMirror:       "Nothing to fix unless the mirror should be an exact copy.",
	ReferrerRewritten:           "Check who re-signed or rewrote the artifact at the mirror.",
	CompareIncomplete:           "Fix the failure named above and compare again; nothing was judged missing.",
	ImageMissingAtMirror:        "Copy the image with its referrers: regctl image copy --referrers --digest-tags SOURCE DEST (or oras cp -r, or a bundle).",
	MirrorNoFallbackTag:         "Copy again with a client that writes the sha256-<hex> fallback tag where the API is missing: regctl image copy --referrers SOURCE DEST (or oras cp -r), or `refdoctor bundle import`, which maintains it.",
	ReferrerSubjectRewritten:    "Copy the image by digest, every platform (not a platform-only or converting copy), then its referrers; or attach them again to the destination's digest.",
	CosignTagNotCopied:          "Copy cosign's tags too: regctl image copy --digest-tags SOURCE DEST, or cosign copy SOURCE DEST.",
	ReferrerNotListed:           "Push it again so that the registry indexes its subject: regctl image copy --referrers --force-recursive SOURCE DEST (a plain copy skips manifests the destination has); check the registry's referrers support with refdoctor probe.",
	ReferrerInOtherRepository:   "Copy the referrers repository too (cosign copy with COSIGN_REPOSITORY set, or regctl image copy --referrers --digest-tags of it), or name the mirror's own with --dest-referrers-repo.",
	MirrorCacheNoReferrers:      "Do not rely on the pull-through cache for referrers: copy them into the mirror (regctl image copy --referrers), or read them from the upstream.",

	FallbackTagDiscovery:       "Upgrade the registry for the referrers API, or make sure the fallback tags are maintained.",
	InventedVersionHeader:      "Ignore the header: OCI-Distribution-API-Version is in no version of the spec.",
	NoProbeLines:               "Run the export with --log-level info so that the probe lines are written.",
	ProbeCountMismatch:         "Look for a timeout or crash near the end of the log; run refdoctor probe on the missing registries.",
	ProbeFailed:                "Run refdoctor probe HOST/REPO for the registry named to see why.",
	ProbesUndecided:            "Run refdoctor probe HOST/REPO for the registries named to see why.",
	SlowRegistry:               "Time the registry's replies (curl -w), raise export.referrer_discovery.timeout_seconds for it, and lower max_concurrent_discoveries if it slows under load.",
	DiscoveryFailures:          "Run refdoctor discover on the failing images to see why.",
	DiscoveryFailuresCounted:   "Run refdoctor discover on the failing images to see why.",
	DiscoveryByTagsExpectedAPI: "Probe the registry again (refdoctor probe --refresh HOST/REPO): it should serve the API.",
	PrometheusUnreachable:      "Check --prometheus (or [telemetry] prometheus_url) and that Prometheus is running.",
	PrometheusError:            "Check the query and Prometheus' own logs; the reply is shown.",
	NoTelemetry:                "Point refdoctor at Prometheus (--prometheus URL or [telemetry] prometheus_url).",
	NoExportSeries:             "Make Prometheus scrape an exporter of the export_* counters (refdoctor serve, see deploy/prometheus/prometheus.yml, or the export tool's metrics endpoint), then query again after one window.",
	ConfigInvalid:              "Fix the config value named, then run again.",
}
