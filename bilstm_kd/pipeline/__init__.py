"""The pipeline: a small stage runner (`runner`: `run`, the stage table), what the stages share (`context`,
`inputs`, `paths`), the choices for flags left at `auto` (`defaults`) and one module per stage. The stage names
(`config.STAGES`) live in the configuration, which validates `--stages` before TensorFlow loads."""
