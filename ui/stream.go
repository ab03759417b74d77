package ui

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	tea "charm.land/bubbletea/v2"
)

// Engine work runs in goroutines that send what happens on a buffered
// channel; a tea.Cmd reads one message and Update re-arms it, so Update
// and View never wait on the engine. Every run has an id: a screen keeps
// the id of the run it wants and drops messages from any other (an older
// probe the operator already replaced, a validation that was stopped).
//
// The messages are typed by what the engine sends (eventMsg[probe.Event],
// doneMsg[discovery.Result], ...): a screen matches the types it asked for
// in a type switch, and nothing in Update asserts an interface value that
// could be something else.

// routedMsg is a message for the screen that started a run.
type routedMsg interface{ target() screenID }

// finishedMsg is the last message of a run.
type finishedMsg interface {
	routedMsg
	finished()
}

// eventMsg carries one engine event to the screen that started the run.
type eventMsg[E any] struct {
	to  screenID
	run uint64
	ev  E
}

// doneMsg carries a run's result, or the error that ended it.
type doneMsg[R any] struct {
	to  screenID
	run uint64
	val R
	err error
}

func (m eventMsg[E]) target() screenID { return m.to }
func (m doneMsg[R]) target() screenID  { return m.to }
func (doneMsg[R]) finished()           {}

// none is the event type of engine work that reports no progress.
type none struct{}

// pumpMsg wraps a message read from a run's channel together with the
// channel, so Update can route the message and read the next one.
type pumpMsg struct {
	msg tea.Msg
	ch  <-chan tea.Msg
}

// pump reads one message from ch; it returns nil (nothing to route) once
// the run has closed its channel.
func pump(ch <-chan tea.Msg) tea.Cmd {
	return func() tea.Msg {
		msg, ok := <-ch
		if !ok {
			return nil
		}
		return pumpMsg{msg: msg, ch: ch}
	}
}

// run is a handle on one engine run.
type run struct {
	id     uint64
	cancel context.CancelFunc
}

// stop cancels the run; a zero run is a no-op.
func (r run) stop() {
	if r.cancel != nil {
		r.cancel()
	}
}

// live tells whether the run has been started and not yet ended.
func (r run) live() bool { return r.cancel != nil }

// start runs fn in a goroutine under the session's context and returns its
// handle and the command that pumps its messages. A panic in the engine is
// recovered and ends the run with an error; leaving the screen or quitting
// cancels ctx, and the goroutine then never blocks on a send.
func start[E, R any](sh *shared, to screenID, fn func(ctx context.Context, emit func(E)) (R, error)) (run, tea.Cmd) {
	sh.runs++
	id := sh.runs
	ctx, cancel := context.WithCancel(sh.ctx)
	ch := make(chan tea.Msg, 256)
	sh.wg.Add(1)
	// The run counts as busy until Update has taken its done message (the
	// root model counts it down there), so that "nothing runs" also means
	// "every result is on screen".
	sh.busy.Add(1)
	session := sh.ctx
	go func() {
		defer sh.wg.Done()
		defer close(ch)
		defer cancel()
		send := func(m tea.Msg) {
			select {
			case ch <- m:
			case <-ctx.Done():
			}
		}
		var val R
		var err error
		func() {
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("internal error (please report): %v", p)
					sh.log.Error("engine panic recovered", "screen", to, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				}
			}()
			val, err = fn(ctx, func(ev E) { send(eventMsg[E]{to: to, run: id, ev: ev}) })
		}()
		// The done message is sent even after the run was stopped (its
		// screen drops it); only the end of the session stops it.
		select {
		case ch <- doneMsg[R]{to: to, run: id, val: val, err: err}:
		case <-session.Done():
		}
	}()
	return run{id: id, cancel: cancel}, tea.Batch(pump(ch), sh.wakeSpinner())
}

// after delivers msg once d has passed, unless the session ends first: a
// plain tea.Tick would keep its goroutine for d after quitting.
func (sh *shared) after(d time.Duration, msg tea.Msg) tea.Cmd {
	ctx := sh.ctx
	return func() tea.Msg {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return msg
		case <-ctx.Done():
			return nil
		}
	}
}

// jobState is where a screen's engine run stands.
type jobState int

const (
	jobIdle    jobState = iota // nothing asked yet, or nothing to work on
	jobRunning                 // the run is under way
	jobDone                    // the run ended with a result
	jobFailed                  // the run ended with an error
	jobStopped                 // esc, or a new target, stopped it
)

// String is the status word shown for the state.
func (s jobState) String() string {
	switch s {
	case jobRunning:
		return "running"
	case jobDone:
		return "done"
	case jobFailed:
		return "error"
	case jobStopped:
		return "stopped"
	}
	return "idle"
}

// job is a screen's one engine run at a time and what came of it: the
// screens that list tags, discover referrers, validate a bundle, read a
// log, collect diagnostics and ask Prometheus all keep one. It drops
// messages of runs it no longer owns in one place.
type job[E, R any] struct {
	state jobState
	err   string
	// res is the last run's result: set when it succeeded, and kept when
	// it failed with a result worth showing (a bundle report up to the
	// point reading stopped).
	res *R
	cur run
}

// start stops the run before, starts fn and marks the job running.
func (j *job[E, R]) start(sh *shared, to screenID, fn func(ctx context.Context, emit func(E)) (R, error)) tea.Cmd {
	j.cur.stop()
	var cmd tea.Cmd
	j.cur, cmd = start(sh, to, fn)
	j.state, j.err, j.res = jobRunning, "", nil
	return cmd
}

// event tells whether an event belongs to the job's current run.
func (j *job[E, R]) event(m eventMsg[E]) bool { return j.cur.live() && m.run == j.cur.id }

// done takes the current run's result and tells whether it was the
// current run's: a stopped run says stopped, a failed one keeps its error
// (and, when keepOnError, its result).
func (j *job[E, R]) done(m doneMsg[R], keepOnError bool) bool {
	if !j.cur.live() || m.run != j.cur.id {
		return false
	}
	j.cur = run{}
	switch {
	case errors.Is(m.err, context.Canceled):
		j.state = jobStopped
	case m.err != nil:
		j.state, j.err = jobFailed, m.err.Error()
		if keepOnError {
			j.res = &m.val
		}
	default:
		j.state, j.res = jobDone, &m.val
	}
	return true
}

// stop cancels the run and tells whether one was running.
func (j *job[E, R]) stop() bool {
	if !j.cur.live() {
		return false
	}
	j.cur.stop()
	j.cur = run{}
	j.state = jobStopped
	return true
}

// reset forgets the result (new targets).
func (j *job[E, R]) reset() {
	j.cur.stop()
	j.cur = run{}
	j.state, j.err, j.res = jobIdle, "", nil
}

// running tells whether a run is under way.
func (j *job[E, R]) running() bool { return j.cur.live() }
