package obfs4

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/ptreactor/ptreactor/codec"
)

// The files a bridge keeps in tor's state directory. Their names and formats are
// obfs4proxy's, so a bridge can move between obfs4proxy, lyrebird and ptreactor and keep
// the bridge line its users already have.
const (
	stateFile      = "obfs4_state.json"
	bridgeLineFile = "obfs4_bridgeline.txt"
)

// serverState is the bridge side's configuration: identity and its own iat-mode.
type serverState struct {
	identity
	iatMode int
}

// jsonState is obfs4_state.json. The field order is the file's key order.
type jsonState struct {
	NodeID     string `json:"node-id"`
	PrivateKey string `json:"private-key"`
	PublicKey  string `json:"public-key"`
	DrbgSeed   string `json:"drbg-seed"`
	IATMode    int    `json:"iat-mode"`
}

// loadServerState builds the bridge's state from TOR_PT_SERVER_TRANSPORT_OPTIONS and the
// state directory, then writes both files back:
//   - node-id, private-key and drbg-seed in opts, all three or none, replace the identity;
//   - otherwise obfs4_state.json is read, or created with a fresh identity if missing;
//   - iat-mode in opts overrides the stored one, and the override is saved.
func loadServerState(opts codec.Args, stateDir string) (*serverState, error) {
	st := new(serverState)
	id, ok1 := opts.Get(argNodeID)
	priv, ok2 := opts.Get(argPrivateKey)
	seed, ok3 := opts.Get(argDrbgSeed)
	switch {
	case ok1 && ok2 && ok3:
		if err := st.fromHex(id, priv, seed); err != nil {
			return nil, err
		}
	case ok1 || ok2 || ok3:
		for _, a := range []struct {
			name string
			ok   bool
		}{{argNodeID, ok1}, {argPrivateKey, ok2}, {argDrbgSeed, ok3}} {
			if !a.ok {
				return nil, fmt.Errorf("missing argument '%s'", a.name)
			}
		}
	default:
		if err := st.readFile(filepath.Join(stateDir, stateFile)); err != nil {
			return nil, err
		}
	}
	if s, ok := opts.Get(argIATMode); ok {
		n, err := parseIATMode(s)
		if err != nil {
			return nil, err
		}
		st.iatMode = n
	}
	if err := st.writeFiles(stateDir); err != nil {
		return nil, err
	}
	return st, nil
}

// fromHex sets the identity from its stored hex form and recomputes the public key.
func (st *serverState) fromHex(nodeID, private, seed string) error {
	if err := parseHex(st.nodeID[:], argNodeID, nodeID); err != nil {
		return err
	}
	if err := parseHex(st.private[:], argPrivateKey, private); err != nil {
		return err
	}
	if err := parseHex(st.drbgSeed[:], argDrbgSeed, seed); err != nil {
		return err
	}
	return st.derivePublic()
}

// readFile loads obfs4_state.json, or makes a new identity when there is none yet.
func (st *serverState) readFile(path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		id, err := newIdentity()
		if err != nil {
			return err
		}
		st.identity = *id
		return nil
	}
	if err != nil {
		return err
	}
	var js jsonState
	if err := json.Unmarshal(data, &js); err != nil {
		return fmt.Errorf("%s: %v", stateFile, err)
	}
	if err := st.fromHex(js.NodeID, js.PrivateKey, js.DrbgSeed); err != nil {
		return fmt.Errorf("%s: %v", stateFile, err)
	}
	if js.IATMode < IATNone || js.IATMode > IATParanoid {
		return fmt.Errorf("%s: invalid iat-mode %d", stateFile, js.IATMode)
	}
	st.iatMode = js.IATMode
	return nil
}

// stateJSON is the exact content of obfs4_state.json: compact, no trailing newline.
func (st *serverState) stateJSON() []byte {
	data, err := json.Marshal(&jsonState{
		NodeID:     hex.EncodeToString(st.nodeID[:]),
		PrivateKey: hex.EncodeToString(st.private[:]),
		PublicKey:  hex.EncodeToString(st.public[:]),
		DrbgSeed:   hex.EncodeToString(st.drbgSeed[:]),
		IATMode:    st.iatMode,
	})
	if err != nil {
		panic(err) // strings and an int always marshal
	}
	return data
}

// bridgeLine is the text of obfs4_bridgeline.txt: comment lines, a blank line and the
// Bridge line with its placeholders left for the operator.
func (st *serverState) bridgeLine() []byte {
	return []byte("# obfs4 torrc client bridge line\n" +
		"#\n" +
		"# ptreactor wrote this line from its obfs4 state (" + stateFile + ").\n" +
		"# It is regenerated at every start; editing it changes nothing.\n" +
		"#\n" +
		"# Replace the placeholders before handing the line out:\n" +
		"#  <IP ADDRESS>  - the bridge's public IP address.\n" +
		"#  <PORT>        - the TCP port of the bridge's obfs4 listener.\n" +
		"#  <FINGERPRINT> - the bridge's relay fingerprint.\n" +
		"\n" +
		"Bridge obfs4 <IP ADDRESS>:<PORT> <FINGERPRINT> cert=" + st.cert() +
		" iat-mode=" + strconv.Itoa(st.iatMode) + "\n")
}

// writeFiles rewrites both files with mode 0600, each through a temporary file and a
// rename so that a crash never leaves a bridge without its identity.
func (st *serverState) writeFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, stateFile), st.stateJSON()); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, bridgeLineFile), st.bridgeLine())
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o600)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// args are the SMETHOD ARGS a client needs: cert and iat-mode.
func (st *serverState) args() codec.Args {
	a := codec.Args{}
	a.Add(argCert, st.cert())
	a.Add(argIATMode, strconv.Itoa(st.iatMode))
	return a
}
