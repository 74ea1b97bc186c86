// Command hello is BuildBinary's test subject: it prints its link-time version.
package main

import "fmt"

var version = "dev"

func main() { fmt.Println(version) }
