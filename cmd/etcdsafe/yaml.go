package main

import (
	yamlv2 "go.yaml.in/yaml/v2"
)

// marshalYAML prints an unstructured object as YAML. sigs.k8s.io/yaml
// (what kubectl uses) marshals to JSON, parses that JSON as YAML and prints
// it again; unstructured content is already plain maps, slices, strings,
// int64, float64 and bools, so the YAML encoder it ends in gives the same
// text directly, at half the cost. TestMarshalYAMLMatchesSigsYAML holds
// the two to the same output.
func marshalYAML(obj map[string]any) ([]byte, error) {
	return yamlv2.Marshal(obj)
}
