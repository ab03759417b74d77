package bundle

import "io"

// WithOffloadMin lowers the size from which a second reader hashes a
// member (offload.go); 0 leaves the default.
func WithOffloadMin(n int64) Opt { return func(o *options) { o.offloadMin = n } }

// WithSecondReader is the file the second reader reads (ValidateFile
// passes the bundle's own), nil for none.
func WithSecondReader(ra io.ReaderAt) Opt { return func(o *options) { o.file = ra } }

// WithOffloadCount counts the members the second reader hashed.
func WithOffloadCount(n *int) Opt { return func(o *options) { o.offloaded = n } }
