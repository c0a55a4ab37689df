module github.com/cityeyelab/ds-analysis

go 1.22
