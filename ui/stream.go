package ui

import (
	"context"
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

// eventMsg carries one engine event to the screen that started the run.
type eventMsg struct {
	to  screenID
	run uint64
	ev  any
}

// doneMsg carries a run's result, or the error that ended it.
type doneMsg struct {
	to  screenID
	run uint64
	val any
	err error
}

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

// work is engine work: it calls emit for progress and returns its result.
type work func(ctx context.Context, emit func(any)) (any, error)

// start runs fn in a goroutine under the session's context and returns its
// handle and the command that pumps its messages. A panic in the engine is
// recovered and ends the run with an error; leaving the screen or quitting
// cancels ctx, and the goroutine then never blocks on a send.
func (sh *shared) start(to screenID, fn work) (run, tea.Cmd) {
	sh.runs++
	id := sh.runs
	ctx, cancel := context.WithCancel(sh.ctx)
	ch := make(chan tea.Msg, 256)
	sh.wg.Add(1)
	sh.busy.Add(1)
	go func() {
		defer sh.wg.Done()
		defer sh.busy.Add(-1)
		defer close(ch)
		defer cancel()
		send := func(m tea.Msg) {
			select {
			case ch <- m:
			case <-ctx.Done():
			}
		}
		var val any
		var err error
		func() {
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("internal error (please report): %v", p)
					sh.log.Error("engine panic recovered", "screen", to, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				}
			}()
			val, err = fn(ctx, func(ev any) { send(eventMsg{to: to, run: id, ev: ev}) })
		}()
		send(doneMsg{to: to, run: id, val: val, err: err})
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
