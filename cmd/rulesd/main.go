// Command rulesd is an automation rules daemon for the Meta Marketing API.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "rulesd: under construction")
	os.Exit(2)
}
