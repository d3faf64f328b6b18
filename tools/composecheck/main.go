// composecheck loads a Compose file with compose-go, the library `docker compose` itself uses:
// the file is validated against the Compose specification's JSON schema, interpolated and normalised.
// Usage: go run . <compose.yml> [env-file]; prints the services, exits 1 with the loader's message on error.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: composecheck <compose.yml> [env-file]")
		os.Exit(2)
	}
	file, _ := filepath.Abs(os.Args[1])
	opts := []cli.ProjectOptionsFn{cli.WithWorkingDirectory(filepath.Dir(file)), cli.WithOsEnv, cli.WithProfiles([]string{"*"})}
	if len(os.Args) > 2 {
		opts = append(opts, cli.WithEnvFiles(os.Args[2]), cli.WithDotEnv)
	}
	po, err := cli.NewProjectOptions([]string{file}, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	project, err := po.LoadProject(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "invalid compose file:", err)
		os.Exit(1)
	}
	names := project.ServiceNames()
	sort.Strings(names)
	for _, n := range names {
		fmt.Println(n)
	}
}
