// Code generation for pb/ from messages.proto (needs protoc in PATH).

package pex

//go:generate protoc --plugin=protoc-gen-go=scripts/protoc-gen-go --go_out=pb --go_opt=paths=source_relative messages.proto
