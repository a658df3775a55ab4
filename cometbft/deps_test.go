package cometbft_test

// The blank import pins google.golang.org/genproto at a version without
// googleapis/rpc. CometBFT's node package brings in grpc, which imports
// google.golang.org/genproto/googleapis/rpc/status, a package that older
// genproto versions (required by cockroachdb/errors and others) also hold:
// in the repository's workspace (go.work) the build then fails with an
// ambiguous import, while module mode does not. go mod tidy drops a
// requirement that nothing imports, hence this import of a tiny alias
// package from the pinned version.
import _ "google.golang.org/genproto/protobuf/field_mask"
