"""The bottleneck explorer (/explorer): the view's state as it lives in the address
(`state`), the rows of a window under its filters (`rows`), the issues behind each mark of
its charts (`marks`) and the charts themselves (`figures`). It draws on the explorer's
figures in data/analysis (one way: analysis knows nothing of the explorer).
Definitions: docs/explorer.md."""
