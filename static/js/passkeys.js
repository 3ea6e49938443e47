// Passkey ceremonies for forms marked data-passkey="get" (use a passkey) or
// "create" (add one). On submit: ask the server for options (it keeps the
// challenge), let the browser and the authenticator answer, put the answer in
// the hidden credential field and send the form. The button comes disabled
// and is enabled here once the form is ready. A static file, as the CSP
// allows no inline script.
(function () {
  "use strict";

  function toBytes(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) {
      base64 += "=";
    }
    var raw = atob(base64);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i += 1) {
      bytes[i] = raw.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function toText(buffer) {
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i += 1) {
      raw += String.fromCharCode(bytes[i]);
    }
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (item) {
      return Object.assign({}, item, { id: toBytes(item.id) });
    });
  }

  function publicKeyOptions(mode, json) {
    var options = Object.assign({}, json, { challenge: toBytes(json.challenge) });
    if (mode === "create") {
      options.user = Object.assign({}, json.user, { id: toBytes(json.user.id) });
      options.excludeCredentials = descriptors(json.excludeCredentials);
    } else {
      options.allowCredentials = descriptors(json.allowCredentials);
    }
    return options;
  }

  function answer(credential) {
    var response = credential.response;
    var out = {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
      response: { clientDataJSON: toText(response.clientDataJSON) }
    };
    if (credential.authenticatorAttachment) {
      out.authenticatorAttachment = credential.authenticatorAttachment;
    }
    if (response.attestationObject) {
      out.response.attestationObject = toText(response.attestationObject);
      out.response.transports = response.getTransports ? response.getTransports() : [];
    } else {
      out.response.authenticatorData = toText(response.authenticatorData);
      out.response.signature = toText(response.signature);
      if (response.userHandle) {
        out.response.userHandle = toText(response.userHandle);
      }
    }
    return JSON.stringify(out);
  }

  function Refusal(message) {
    this.message = message;
  }

  function fetchOptions(form) {
    var token = form.querySelector("input[name=csrf_token]");
    return fetch(form.getAttribute("data-options"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRFToken": token ? token.value : "" }
    }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) {
          throw new Refusal(body.error);
        }
        return body;
      });
    });
  }

  function setUp(form) {
    var mode = form.getAttribute("data-passkey");
    var field = form.querySelector("input[name=credential]");
    var button = form.querySelector("button[type=submit]");
    var problem = form.querySelector(".passkey-problem");

    function say(message) {
      problem.textContent = message;
      problem.hidden = false;
    }

    if (!window.PublicKeyCredential || !navigator.credentials) {
      say(form.getAttribute("data-msg-unsupported"));
      return;  // the button stays disabled
    }
    form.addEventListener("submit", function (event) {
      if (field.value) {
        return;
      }
      event.preventDefault();
      problem.hidden = true;
      button.disabled = true;
      fetchOptions(form).then(function (json) {
        var publicKey = publicKeyOptions(mode, json);
        return mode === "create" ? navigator.credentials.create({ publicKey: publicKey })
          : navigator.credentials.get({ publicKey: publicKey });
      }).then(function (credential) {
        field.value = answer(credential);
        form.submit();
      }).catch(function (error) {
        button.disabled = false;
        if (error instanceof Refusal && error.message) {
          say(error.message);
        } else if (error && (error.name === "NotAllowedError" || error.name === "AbortError")) {
          say(form.getAttribute("data-msg-cancelled"));
        } else {
          say(form.getAttribute("data-msg-failed"));
        }
      });
    });
    button.disabled = false;
  }

  Array.prototype.forEach.call(document.querySelectorAll("form[data-passkey]"), setUp);
})();
