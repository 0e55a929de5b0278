// The bench's go-nsq consumer of the CPU-bound row: a go-nsq Consumer on one
// nsqd connection whose handler keeps the CPU busy for --spin (20 µs) per
// message, as bench/workers/spin20us.ts does in the daemon, with
// --concurrency handlers. The bench runs it with GOMAXPROCS and
// --concurrency set to the machine's cores.
//
// It stops on SIGTERM or SIGINT (the consumer drains and closes), when its
// stdin reaches EOF (the bench that holds the other end went away) and after
// --runfor.
package main

import (
	"flag"
	"io"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nsqio/go-nsq"
)

// spin keeps the CPU busy until d has passed on the monotonic clock (time.Since
// reads it), the way spin20us.ts loops on performance.now(): the same work,
// measured the same way.
func spin(d time.Duration) {
	start := time.Now()
	for time.Since(start) < d {
		// Busy on purpose: this is the work being measured.
	}
}

func main() {
	nsqdAddress := flag.String("nsqd-tcp-address", "127.0.0.1:4150", "the nsqd to consume from")
	topic := flag.String("topic", "", "topic")
	channel := flag.String("channel", "", "channel")
	maxInFlight := flag.Int("max-in-flight", 200, "go-nsq's MaxInFlight (RDY of the one connection)")
	concurrency := flag.Int("concurrency", 1, "handler goroutines")
	spinFor := flag.Duration("spin", 20*time.Microsecond, "CPU time each message costs")
	runFor := flag.Duration("runfor", 30*time.Minute, "exit after this long in any case")
	flag.Parse()
	if *topic == "" || *channel == "" || *maxInFlight < 1 || *concurrency < 1 {
		log.Fatalf("go_cpu_consumer: expected --topic, --channel, --max-in-flight >= 1 and "+
			"--concurrency >= 1, got topic %q channel %q max-in-flight %d concurrency %d",
			*topic, *channel, *maxInFlight, *concurrency)
	}

	config := nsq.NewConfig()
	config.MaxInFlight = *maxInFlight
	consumer, err := nsq.NewConsumer(*topic, *channel, config)
	if err != nil {
		log.Fatalf("go_cpu_consumer: %v", err)
	}
	consumer.SetLogger(log.New(os.Stderr, "", log.LstdFlags), nsq.LogLevelWarning)
	spinTime := *spinFor
	// Returning nil finishes the message.
	consumer.AddConcurrentHandlers(nsq.HandlerFunc(func(*nsq.Message) error {
		spin(spinTime)
		return nil
	}), *concurrency)
	if err := consumer.ConnectToNSQD(*nsqdAddress); err != nil {
		log.Fatalf("go_cpu_consumer: connecting to %s: %v", *nsqdAddress, err)
	}

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	stdinClosed := make(chan struct{})
	go func() {
		// Nothing is sent on stdin; only its end matters.
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	select {
	case <-stop:
		consumer.Stop()
		<-consumer.StopChan
	case <-stdinClosed:
		os.Exit(3)
	case <-time.After(*runFor):
		os.Exit(3)
	case <-consumer.StopChan:
		log.Fatalf("go_cpu_consumer: the consumer stopped by itself")
	}
}
