module github.com/as2gate/as2gate

go 1.26.0

require golang.org/x/crypto v0.58.0

require (
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/spf13/cobra v1.10.2 // indirect
	github.com/spf13/pflag v1.0.9 // indirect
)
