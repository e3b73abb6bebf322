// Command ptreactor is a Tor pluggable transport proxy; tor starts it as a managed proxy.
package main

func main() {}
