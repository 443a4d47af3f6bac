// placeholder until the CLI lands (next commit)
if (import.meta.main) console.log("auto-consul");
