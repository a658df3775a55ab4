module github.com/pexnet/pex

go 1.25

tool google.golang.org/protobuf/cmd/protoc-gen-go

require (
	github.com/stretchr/testify v1.12.1
	go.uber.org/goleak v1.3.0
	google.golang.org/protobuf v1.36.12
)

require go.yaml.in/yaml/v3 v3.0.5 // indirect
