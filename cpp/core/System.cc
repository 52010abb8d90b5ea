#include "System.h"

#include <sstream>
#include <stdexcept>

namespace vaepipe {

namespace {
[[noreturn]] void fail(const std::string& what) { throw std::invalid_argument(what); }
}  // namespace

void SystemParams::validate() const {
    std::ostringstream msg;
    if (nParticles <= 0) {
        msg << "n_particles must be positive, got " << nParticles;
        fail(msg.str());
    }
    if (!(boxLength > 0.0) || !std::isfinite(boxLength)) {
        msg << "box_length must be a positive finite number (sigma), got " << boxLength;
        fail(msg.str());
    }
    if (!(temperature > 0.0) || !std::isfinite(temperature)) {
        msg << "temperature must be a positive finite number (epsilon/k), got " << temperature;
        fail(msg.str());
    }
    if (!std::isfinite(gamma)) {
        msg << "gamma must be finite, got " << gamma;
        fail(msg.str());
    }
    if (dim != 2 && dim != 3) {
        msg << "dim must be 2 or 3, got " << dim;
        fail(msg.str());
    }
    if (!(cutoff > 0.0)) {
        msg << "cutoff must be positive (or None), got " << cutoff;
        fail(msg.str());
    }
    if (boundary == Boundary::Periodic && gamma != 0.0) {
        msg << "gravity (gamma=" << gamma << ") is not defined with periodic boundaries";
        fail(msg.str());
    }
    if (boundary != Boundary::Reflect && (!hasCutoff() || cutoff > 0.5 * boxLength)) {
        msg << boundaryName(boundary) << " boundaries need a cutoff <= box_length/2 = " << 0.5 * boxLength
            << ", got " << cutoff;
        fail(msg.str());
    }
    if (tailCorrection && (boundary != Boundary::Periodic || !hasCutoff())) {
        fail("tail_correction needs periodic boundaries and a cutoff");
    }
}

double SystemParams::tailEnergy() const {
    if (!tailCorrection) return 0.0;
    const double pi = 3.14159265358979323846;
    const double rho = nParticles / volume();
    const double rc = cutoff;
    double perParticle;
    if (dim == 3) {
        perParticle = (8.0 / 3.0) * pi * rho * (std::pow(rc, -9) / 3.0 - std::pow(rc, -3));
    } else {
        perParticle = pi * rho * (0.4 * std::pow(rc, -10) - std::pow(rc, -4));
    }
    return nParticles * perParticle;
}

}  // namespace vaepipe
