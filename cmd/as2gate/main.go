// Command as2gate is an AS2 (RFC 4130) gateway.
package main

import (
	"fmt"
	"os"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "version" {
		fmt.Println("as2gate", version)
		return
	}
	fmt.Fprintln(os.Stderr, "as2gate: gateway not built yet: this build holds the AS2 protocol core (packages cms and as2); `as2gate serve` arrives with the gateway")
	os.Exit(2)
}
