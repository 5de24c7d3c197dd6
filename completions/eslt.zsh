#compdef eslt

_eslt_completion() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" _ESLT_COMPLETE=complete_zsh eslt)
}

compdef _eslt_completion eslt
