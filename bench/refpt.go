package bench

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ptreactor/ptreactor/codec/socks"
)

// RefPTEnv, set to 1 in a binary's environment, makes a program that calls RunRefPTIfAsked
// act as the reference forwarder instead of itself; the load generator re-executes itself
// this way so that the reference is a process of its own, measured like the others.
const RefPTEnv = "PTREACTOR_BENCH_REFPT"

// RunRefPTIfAsked runs the reference forwarder and exits if RefPTEnv is set.
func RunRefPTIfAsked() {
	if os.Getenv(RefPTEnv) == "1" {
		os.Exit(RunRefPT())
	}
}

// RunRefPT is the reference against which plain ptreactor is measured: a managed PT for the
// "plain" transport written the obvious Go way, two goroutines per tunnel and io.Copy
// between *net.TCPConn, which the runtime turns into splice(2). It speaks just enough of
// pt-spec (one transport, SOCKS5 CONNECT, exit on stdin close) for the harness. It returns
// the exit code.
func RunRefPT() int {
	fmt.Println("VERSION 1")
	var ln net.Listener
	var err error
	var serve func(net.Conn)
	if ts := os.Getenv("TOR_PT_CLIENT_TRANSPORTS"); ts != "" {
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			fmt.Printf("CMETHOD-ERROR plain %v\nCMETHODS DONE\n", err)
			return 1
		}
		fmt.Printf("CMETHOD plain socks5 %s\nCMETHODS DONE\n", ln.Addr())
		serve = refClient
	} else {
		bind := strings.TrimPrefix(os.Getenv("TOR_PT_SERVER_BINDADDR"), "plain-")
		orport := os.Getenv("TOR_PT_ORPORT")
		if ln, err = net.Listen("tcp", bind); err != nil {
			fmt.Printf("SMETHOD-ERROR plain %v\nSMETHODS DONE\n", err)
			return 1
		}
		fmt.Printf("SMETHOD plain %s\nSMETHODS DONE\n", ln.Addr())
		serve = func(c net.Conn) {
			up, err := net.Dial("tcp", orport)
			if err != nil {
				fmt.Fprintln(os.Stderr, "refpt:", err)
				c.Close()
				return
			}
			pipe(c, up)
		}
	}
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "refpt:", err)
			time.Sleep(10 * time.Millisecond) // EMFILE and the like: back off
			continue
		}
		go serve(c)
	}
}

// refClient answers one SOCKS5 CONNECT (any auth arguments are read and ignored) and pipes.
func refClient(c net.Conn) {
	target, err := refSOCKS(c)
	if err != nil {
		c.Close()
		return
	}
	up, err := net.Dial("tcp", target)
	if err != nil {
		fmt.Fprintln(os.Stderr, "refpt:", err)
		c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0})
		c.Close()
		return
	}
	if _, err := c.Write([]byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0}); err != nil {
		c.Close()
		up.Close()
		return
	}
	pipe(c, up)
}

// refSOCKS reads a SOCKS5 greeting, optional RFC 1929 sub-negotiation and CONNECT request,
// and returns the target. It reads exactly the request's bytes, so none are buffered away
// from the splice that follows.
func refSOCKS(c net.Conn) (string, error) {
	buf := make([]byte, 256)
	read := func(n int) ([]byte, error) {
		_, err := io.ReadFull(c, buf[:n])
		return buf[:n], err
	}
	b, err := read(2)
	if err != nil || b[0] != 5 {
		return "", fmt.Errorf("greeting")
	}
	methods, err := read(int(b[1]))
	if err != nil {
		return "", err
	}
	if strings.IndexByte(string(methods), 2) >= 0 {
		c.Write([]byte{5, 2})
		b, err := read(2) // ver, ulen
		if err != nil {
			return "", err
		}
		if _, err := read(int(b[1])); err != nil {
			return "", err
		}
		b, err = read(1)
		if err != nil {
			return "", err
		}
		if _, err := read(int(b[0])); err != nil {
			return "", err
		}
		c.Write([]byte{1, 0})
	} else {
		c.Write([]byte{5, 0})
	}
	b, err = read(4)
	if err != nil || b[1] != 1 {
		return "", fmt.Errorf("request")
	}
	var host string
	switch b[3] {
	case 1:
		b, err = read(4)
		host = net.IP(b).String()
	case 4:
		b, err = read(16)
		host = net.IP(b).String()
	case 3:
		if b, err = read(1); err == nil {
			b, err = read(int(b[0]))
			host = string(b)
		}
	default:
		return "", fmt.Errorf("address type")
	}
	if err != nil {
		return "", err
	}
	host = strings.Clone(host)
	if !socks.ValidHost(host) { // the same rule as ptreactor, so both refuse the same requests
		return "", fmt.Errorf("bad host name")
	}
	b, err = read(2)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(b)))), nil
}

func pipe(a, b net.Conn) {
	var once sync.Once
	done := func() {
		once.Do(func() { a.Close(); b.Close() })
	}
	go func() {
		io.Copy(b, a)
		done()
	}()
	io.Copy(a, b)
	done()
}
