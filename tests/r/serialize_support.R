# Test support for pydsbase/rserialize.py (sourced into a private environment by tests/rserialize_r.py).
# `.ds_scrub` is not defined here: tests/rserialize_r.py hands over the bridge's own (r_server/R/wire.R).

.ds_serialize_box <- function(box, version, xdr = TRUE) serialize(.ds_scrub(box[[1L]]), NULL, xdr = xdr, version = version)

# R's own account of a value, one line per fact, for the decoder's tests to compare with what the
# decoder read: typeof, class, names, dim, dimnames, the data (doubles as "%.17g": every bit), the
# deparse of language objects, and every other attribute in attributes() order, recursively. An S4
# Matrix is described as base::as.matrix gives it (plus its class).
.ds_fact_text <- function(v) {
  if (is.null(v)) return("NULL")
  s <- if (is.double(v)) ifelse(is.na(v) & !is.nan(v), "NA", sprintf("%.17g", v)) else as.character(v)
  if (!is.double(v)) s[is.na(v)] <- "<NA>"
  paste(s, collapse = "|")
}

.ds_facts <- function(x, path = "") {
  if (is.null(x)) return(paste0(path, "NULL"))
  out <- character(0)
  if (isS4(x)) {
    out <- paste0(path, "s4class=", as.character(class(x)))
    x <- base::as.matrix(x)
  }
  type <- typeof(x)
  out <- c(out, paste0(path, "type=", type), paste0(path, "class=", paste(class(x), collapse = "|")))
  if (type %in% c("language", "symbol")) {
    out <- c(out, paste0(path, "deparse=", paste(deparse(x, width.cutoff = 500L), collapse = "\n")))
    skip <- c("class", ".Environment")
  } else if (type == "list") {
    out <- c(out, paste0(path, "names=", .ds_fact_text(names(x))))
    for (i in seq_along(x)) out <- c(out, .ds_facts(x[[i]], paste0(path, "[[", i, "]]")))
    skip <- c("names", "class")
  } else {
    dn <- dimnames(x)
    out <- c(out, paste0(path, "data=", .ds_fact_text(as.vector(unclass(x)))),
             paste0(path, "names=", .ds_fact_text(names(x))), paste0(path, "dim=", .ds_fact_text(dim(x))),
             paste0(path, "dimnames=", if (is.null(dn)) "NULL" else vapply(dn, .ds_fact_text, "")),
             paste0(path, "dimnames_names=", .ds_fact_text(names(dn))))
    skip <- c("names", "class", "dim", "dimnames")
  }
  a <- attributes(x)
  for (n in setdiff(names(a), skip)) out <- c(out, .ds_facts(a[[n]], paste0(path, "@", n, ":")))
  out
}

.ds_facts_box <- function(box) .ds_facts(box[[1L]])

# For the deparse test: each text is R code evaluating to a language object; its serialization
# and deparse(x, width.cutoff = 500L); NULL for a text R refuses.
.ds_deparse_batch <- function(texts) {
  lapply(texts, function(text) {
    x <- tryCatch(eval(str2lang(text), envir = globalenv()), error = function(e) NULL)
    if (!is.language(x)) return(NULL)  # a generated text R refuses (or whose value is not language)
    list(serialize(x, NULL), deparse(x, width.cutoff = 500L))
  })
}
