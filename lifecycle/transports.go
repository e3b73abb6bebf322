package lifecycle

import (
	"github.com/ptreactor/ptreactor/codec"
	"github.com/ptreactor/ptreactor/codec/obfs4"
	"github.com/ptreactor/ptreactor/codec/plain"
)

// transports are the transports ptreactor implements, by the name tor uses, configured
// from the flags. This is the one place a transport is listed; the reactor serves what it
// is handed.
func transports(o *Options) map[string]codec.Transport {
	return map[string]codec.Transport{
		plain.Name: plain.Transport{},
		obfs4.Name: obfs4.Transport{BiasedDist: o.Obfs4DistBias},
	}
}
