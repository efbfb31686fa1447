// Command amqp091-go-worker is the client half of the "amqp091-go" client of
// bench/e2e.py: one workload (W1-W5) with github.com/rabbitmq/amqp091-go.
//
// e2e.py's Python worker process stays the wrapper, as for every other
// client: it declares, prefills, polls and deletes the queue through its
// neutral helper connection, and it starts and stops the wall clock. Only
// the client's part runs here, in the same steps as the Python adapters
// (GoAdapter in e2e.py), driven by lines on stdin and stdout:
//
//	worker -> wrapper  READY       connected, channel open (W2: confirm.select done)
//	wrapper -> worker  GO          the wrapper's clock has started: do the work
//	worker -> wrapper  SENT        W1/W2: all published (W2: all confirmed);
//	                               the wrapper polls the broker's count, stops
//	                               its clock, then
//	wrapper -> worker  STOP        ... tells the worker to stop its CPU clock
//	worker -> wrapper  STOP        W3/W5: at the N-th ack; W4: after the last
//	                               round trip; the wrapper stops its clock
//	worker -> wrapper  RESULT {}   after the connection is closed: the CPU
//	                               the process spent between GO and STOP
//	                               (cpu_s), and the W3/W4/W5 outcome
//	worker -> wrapper  ERROR text  anything that went wrong; exit status 1
//
// The only argument is a JSON object: op (the e2e.py Adapter method),
// url, queue, n, body_size, window, prefetch and timeout (seconds, the
// deadline of every wait). W4's latencies are taken here, around each
// QueueDeclarePassive, on Go's monotonic clock, as the Python adapters take
// theirs around each call with time.perf_counter_ns.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// spec is the job the wrapper gives: what to do and with which parameters.
type spec struct {
	Op       string  `json:"op"`
	URL      string  `json:"url"`
	Queue    string  `json:"queue"`
	N        int     `json:"n"`
	BodySize int     `json:"body_size"`
	Window   int     `json:"window"`
	Prefetch int     `json:"prefetch"`
	Timeout  float64 `json:"timeout"`
}

// result is the RESULT line's object.
type result struct {
	CPUSeconds  float64 `json:"cpu_s"`
	Consumed    int     `json:"consumed"`
	Bytes       int64   `json:"bytes"`
	LatenciesNs []int64 `json:"latencies_ns,omitempty"`
}

type worker struct {
	spec     spec
	body     []byte
	conn     *amqp.Connection
	ch       *amqp.Channel
	confirms chan amqp.Confirmation // W2 only
	commands <-chan string          // the wrapper's lines, closed at EOF
	deadline <-chan time.Time
	cpu0     float64
	cpu1     float64
}

func main() {
	if err := run(); err != nil {
		say("ERROR " + err.Error())
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) != 2 {
		return errors.New("usage: amqp091-go-worker JOB-JSON")
	}
	var s spec
	if err := json.Unmarshal([]byte(os.Args[1]), &s); err != nil {
		return fmt.Errorf("job: %w", err)
	}
	if s.N < 1 || s.Timeout <= 0 {
		return fmt.Errorf("job: n %d, timeout %g", s.N, s.Timeout)
	}
	w := &worker{spec: s, body: body(s.BodySize), commands: readLines()}
	// Until GO, the setup has the whole timeout; from GO on the work has it.
	w.deadline = time.After(w.timeout())
	out, err := w.work()
	if w.conn != nil {
		// Outside the clock, as the Python adapters close theirs; an error
		// closing a connection that did its work is not the workload's.
		_ = w.conn.Close()
	}
	if err != nil {
		return err
	}
	out.CPUSeconds = w.cpu1 - w.cpu0
	line, err := json.Marshal(out)
	if err != nil {
		return err
	}
	say("RESULT " + string(line))
	return nil
}

func (w *worker) timeout() time.Duration {
	return time.Duration(w.spec.Timeout * float64(time.Second))
}

// work connects (untimed), waits for GO, does the workload.
func (w *worker) work() (result, error) {
	var err error
	if w.conn, err = amqp.Dial(w.spec.URL); err != nil {
		return result{}, fmt.Errorf("connect: %w", err)
	}
	if w.ch, err = w.conn.Channel(); err != nil {
		return result{}, fmt.Errorf("channel: %w", err)
	}
	if w.spec.Op == "publish_confirmed" {
		if err = w.ch.Confirm(false); err != nil {
			return result{}, fmt.Errorf("confirm.select: %w", err)
		}
		// Never more than Window unconfirmed, so the library never blocks
		// handing a confirmation to this channel.
		w.confirms = w.ch.NotifyPublish(make(chan amqp.Confirmation, w.spec.Window))
	}
	say("READY")
	if err = w.expect("GO"); err != nil {
		return result{}, err
	}
	w.deadline = time.After(w.timeout())
	w.cpu0 = cpuSeconds()
	switch w.spec.Op {
	case "publish":
		return result{}, w.publish()
	case "publish_confirmed":
		return result{}, w.publishConfirmed()
	case "consume":
		return w.consume()
	case "passive_declare":
		return w.passiveDeclare()
	case "publish_consume":
		if err = w.publishAll(); err != nil {
			return result{}, err
		}
		return w.consume()
	}
	return result{}, fmt.Errorf("unknown op %q", w.spec.Op)
}

// publishAll publishes N bodies to the queue through the default exchange,
// with no properties, not mandatory: what the Python adapters publish.
func (w *worker) publishAll() error {
	msg := amqp.Publishing{Body: w.body}
	ctx := context.Background()
	for i := 0; i < w.spec.N; i++ {
		if err := w.ch.PublishWithContext(ctx, "", w.spec.Queue, false, false, msg); err != nil {
			return fmt.Errorf("publish %d: %w", i+1, err)
		}
	}
	return nil
}

// publish is W1: publish, then the wrapper waits for the broker's count.
func (w *worker) publish() error {
	if err := w.publishAll(); err != nil {
		return err
	}
	return w.sent()
}

// publishConfirmed is W2: at most Window unconfirmed. The library hands the
// confirmations over in publish order, so receiving one when Window are
// outstanding is waiting for the oldest, as amqp_client's adapters do.
func (w *worker) publishConfirmed() error {
	msg := amqp.Publishing{Body: w.body}
	ctx := context.Background()
	outstanding, nacked := 0, 0
	next := func() error {
		select {
		case c, ok := <-w.confirms:
			if !ok {
				return errors.New("channel closed while waiting for a confirm")
			}
			if !c.Ack {
				nacked++
			}
			outstanding--
			return nil
		case <-w.deadline:
			return w.late("waiting for a confirm")
		}
	}
	for i := 0; i < w.spec.N; i++ {
		if outstanding >= w.spec.Window {
			if err := next(); err != nil {
				return err
			}
		}
		if err := w.ch.PublishWithContext(ctx, "", w.spec.Queue, false, false, msg); err != nil {
			return fmt.Errorf("publish %d: %w", i+1, err)
		}
		outstanding++
	}
	for outstanding > 0 {
		if err := next(); err != nil {
			return err
		}
	}
	if nacked > 0 {
		return fmt.Errorf("%d basic.nack", nacked)
	}
	return w.sent()
}

// sent tells the wrapper the publishing is done; the wrapper's clock stops
// when the broker counts them all, then it sends STOP.
func (w *worker) sent() error {
	say("SENT")
	if err := w.expect("STOP"); err != nil {
		return err
	}
	w.cpu1 = cpuSeconds()
	return nil
}

// consume is W3 (and W5's second half): basic.qos, basic.consume, one
// basic.ack per delivery; STOP at the N-th ack.
func (w *worker) consume() (result, error) {
	if err := w.ch.Qos(w.spec.Prefetch, 0, false); err != nil {
		return result{}, fmt.Errorf("basic.qos: %w", err)
	}
	deliveries, err := w.ch.Consume(w.spec.Queue, "", false, false, false, false, nil)
	if err != nil {
		return result{}, fmt.Errorf("basic.consume: %w", err)
	}
	var out result
	for out.Consumed < w.spec.N {
		select {
		case d, ok := <-deliveries:
			if !ok {
				return out, fmt.Errorf("consumer closed after %d of %d", out.Consumed, w.spec.N)
			}
			if err := d.Ack(false); err != nil {
				return out, fmt.Errorf("basic.ack: %w", err)
			}
			out.Consumed++
			out.Bytes += int64(len(d.Body))
		case <-w.deadline:
			return out, w.late(fmt.Sprintf("consumed %d of %d", out.Consumed, w.spec.N))
		}
	}
	w.stopped()
	return out, nil
}

// passiveDeclare is W4: N passive queue.declare round trips, each timed.
func (w *worker) passiveDeclare() (result, error) {
	lat := make([]int64, 0, w.spec.N)
	for i := 0; i < w.spec.N; i++ {
		t := time.Now()
		if _, err := w.ch.QueueDeclarePassive(w.spec.Queue, false, false, false, false, nil); err != nil {
			return result{}, fmt.Errorf("queue.declare %d: %w", i+1, err)
		}
		lat = append(lat, time.Since(t).Nanoseconds())
	}
	w.stopped()
	return result{LatenciesNs: lat}, nil
}

// stopped stops the CPU clock and tells the wrapper to stop its own.
func (w *worker) stopped() {
	w.cpu1 = cpuSeconds()
	say("STOP")
}

// expect waits, at most until the deadline, for the wrapper's next line.
func (w *worker) expect(want string) error {
	select {
	case line, ok := <-w.commands:
		if !ok {
			return fmt.Errorf("stdin closed while waiting for %s", want)
		}
		if line != want {
			return fmt.Errorf("got %q, expected %s", line, want)
		}
		return nil
	case <-w.deadline:
		return w.late("waiting for " + want)
	}
}

func (w *worker) late(what string) error {
	return fmt.Errorf("deadline of %g s exceeded %s", w.spec.Timeout, what)
}

// readLines delivers stdin's lines; the channel closes at EOF.
func readLines() <-chan string {
	lines := make(chan string, 1)
	go func() {
		defer close(lines)
		scanner := bufio.NewScanner(os.Stdin)
		for scanner.Scan() {
			lines <- scanner.Text()
		}
	}()
	return lines
}

// say writes one protocol line; os.Stdout is unbuffered, so it leaves at once.
func say(line string) {
	fmt.Fprintln(os.Stdout, line)
}

// body is e2e.py's _body: bytes 0, 1, ..., 255, 0, 1, ...
func body(size int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// cpuSeconds is the CPU time (user + system) of this process, all threads.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return seconds(ru.Utime) + seconds(ru.Stime)
}

func seconds(tv syscall.Timeval) float64 {
	return float64(tv.Sec) + float64(tv.Usec)/1e6
}
