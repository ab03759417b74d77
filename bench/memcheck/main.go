// Command memcheck runs refdoctor's bundle validate and inspect on every
// input of the hostile memory suite (internal/craft.Hostile: the inputs
// that exhausted memory before, and the largest whole bundles the format
// allows), each as a child process, and reads each child's peak resident
// set size from the kernel (getrusage, through /usr/bin/time). It prints one line per run and
// the worst case, and exits 1 if any run reached the limit or answered
// without the expected problem code.
//
// Usage: memcheck -bin PATH/refdoctor [-dir DIR] [-limit-mib 64] [-run REGEXP]
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"time"

	"github.com/refdoctor/refdoctor/internal/craft"
)

func main() {
	bin := flag.String("bin", "", "refdoctor binary to measure")
	dir := flag.String("dir", filepath.Join(os.TempDir(), "refdoctor-memcheck"), "where the inputs are written (kept between runs)")
	limit := flag.Int64("limit-mib", 64, "peak RSS every run must stay under")
	only := flag.String("run", "", "only cases whose name matches")
	flag.Parse()
	if *bin == "" {
		fmt.Fprintln(os.Stderr, "memcheck: -bin is required")
		os.Exit(2)
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fail(err)
	}
	re := regexp.MustCompile(*only)
	worst, worstName := int64(0), ""
	status := 0
	fmt.Printf("%-46s %-9s %4s %9s %8s  %s\n", "CASE", "COMMAND", "EXIT", "PEAK RSS", "TIME", "CODES")
	for _, c := range craft.Hostile() {
		if !re.MatchString(c.Name) {
			continue
		}
		ext := c.Ext
		if ext == "" {
			ext = ".tgz"
		}
		path := filepath.Join(*dir, c.Name+ext)
		if _, err := os.Stat(path); err != nil {
			if err := write(path, c); err != nil {
				fail(err)
			}
		}
		for _, cmd := range [][]string{{"validate", "--check-referrers"}, {"inspect"}} {
			args := append([]string{"-o", "json", "bundle"}, cmd...)
			args = append(args, "--file", path)
			start := time.Now()
			// The kernel's peak RSS of a child includes the address space
			// it was forked from (until exec); /usr/bin/time is a small C
			// program, so its child's figure is refdoctor's own.
			rssFile := filepath.Join(*dir, ".rss")
			child := exec.Command("/usr/bin/time", append([]string{"-f", "%M", "-o", rssFile, *bin}, args...)...)
			var out bytes.Buffer
			child.Stdout = &out
			err := child.Run()
			if child.ProcessState == nil {
				fail(err)
			}
			rss := readRSS(rssFile) // KiB
			codes := problemCodes(out.Bytes())
			verdict := ""
			if cmd[0] == "validate" && c.Want != "" && !slices.Contains(codes, c.Want) {
				verdict, status = "  FAIL: want "+c.Want, 1
			}
			if cmd[0] == "validate" && c.Want == "" && child.ProcessState.ExitCode() != 0 {
				verdict, status = "  FAIL: a whole bundle did not validate", 1
			}
			if rss >= *limit<<10 {
				verdict, status = verdict+fmt.Sprintf("  FAIL: peak RSS over %d MiB", *limit), 1
			}
			fmt.Printf("%-46s %-9s %4d %6.1f MiB %7.1fs  %v%s\n", c.Name, cmd[0], child.ProcessState.ExitCode(), float64(rss)/1024, time.Since(start).Seconds(), codes, verdict)
			if rss > worst {
				worst, worstName = rss, c.Name+" ("+cmd[0]+")"
			}
		}
	}
	fmt.Printf("\nworst case: %s, peak RSS %.1f MiB (limit %d MiB)\n", worstName, float64(worst)/1024, *limit)
	os.Exit(status)
}

func write(path string, c craft.Case) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := c.Write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readRSS(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		fail(err)
	}
	var kib int64
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	if _, err := fmt.Sscan(string(lines[len(lines)-1]), &kib); err != nil {
		fail(fmt.Errorf("read peak RSS from /usr/bin/time: %q", b))
	}
	return kib
}

func problemCodes(out []byte) []string {
	var rep struct {
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	var codes []string
	if json.Unmarshal(out, &rep) == nil {
		for _, e := range rep.Errors {
			if !slices.Contains(codes, e.Code) {
				codes = append(codes, e.Code)
			}
		}
	}
	slices.Sort(codes)
	return codes
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "memcheck:", err)
	os.Exit(2)
}
