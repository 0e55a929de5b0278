module nsqworker/bench/go_cpu_consumer

go 1.24

// go-nsq and snappy at the versions NSQ v1.3.0 builds with (tools/nsq/go.mod).
require github.com/nsqio/go-nsq v1.1.0

require github.com/golang/snappy v0.0.4 // indirect
