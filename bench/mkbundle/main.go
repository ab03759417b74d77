// Command mkbundle writes a large valid mirror bundle of random layers for
// the validation benchmark (bench/validate.sh). Keep its output in /tmp:
// bundles this size never belong in the repository.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"

	"github.com/refdoctor/refdoctor/bench/benchgen"
	"github.com/refdoctor/refdoctor/bundle"
)

func main() {
	out := flag.String("out", "", "bundle file to write")
	sizeMiB := flag.Int64("size", 1024, "total layer size in MiB")
	layers := flag.Int("layers", 16, "number of layers")
	zstd := flag.Bool("zstd", false, "compress with zstd instead of gzip")
	stored := flag.Bool("stored", false, "store the layers, each in a gzip member of its own, as export writes compressed layers")
	flag.Parse()
	if *out == "" || *layers < 1 {
		flag.Usage()
		os.Exit(2)
	}
	comp := bundle.CompressionGzip
	if *zstd {
		comp = bundle.CompressionZstd
	}
	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	st, err := benchgen.Write(bw, benchgen.Config{
		Layers: *layers, LayerSize: (*sizeMiB << 20) / int64(*layers), Compression: comp, Seed: 1, Stored: *stored,
	})
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("wrote %s: %d members, %d listed bytes\n", *out, st.Members, st.ListedBytes)
}
