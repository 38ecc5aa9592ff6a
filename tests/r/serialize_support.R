# Test support for pydsbase/rserialize.py (sourced into a private environment by tests/rserialize_r.py).

# Environments a value may carry to a client: a formula's (or any attribute's) environment that is not
# the global, base or empty one becomes the global one. Lists, pairlists, calls and attributes are
# walked; S4 objects, functions and symbols are left as they are (the decoder refuses functions).
.ds_scrub <- function(x) {
  if (is.environment(x)) {
    keep <- identical(x, globalenv()) || identical(x, baseenv()) || identical(x, emptyenv())
    return(if (keep) x else globalenv())
  }
  if (isS4(x) || is.function(x) || is.name(x) || is.null(x)) return(x)
  if (is.list(x) || is.call(x) || is.pairlist(x)) {
    for (i in seq_along(x)) {
      if (is.list(x[[i]]) || is.call(x[[i]]) || is.environment(x[[i]]) || !is.null(attributes(x[[i]]))) {
        new <- .ds_scrub(x[[i]])
        if (!identical(new, x[[i]])) x[[i]] <- new
      }
    }
  }
  a <- attributes(x)
  for (n in names(a)) {
    new <- .ds_scrub(a[[n]])
    if (!identical(new, a[[n]])) attr(x, n) <- new
  }
  x
}

.ds_serialize_box <- function(box, version, xdr = TRUE) serialize(.ds_scrub(box[[1L]]), NULL, xdr = xdr, version = version)

# For the deparse test: each text is R code evaluating to a language object; its serialization
# and deparse(x, width.cutoff = 500L); NULL for a text R refuses.
.ds_deparse_batch <- function(texts) {
  lapply(texts, function(text) {
    x <- tryCatch(eval(str2lang(text), envir = globalenv()), error = function(e) NULL)
    if (!is.language(x)) return(NULL)  # a generated text R refuses (or whose value is not language)
    list(serialize(x, NULL), deparse(x, width.cutoff = 500L))
  })
}
